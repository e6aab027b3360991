"""The registry of experiments run by ``python -m reproduce all``, in order."""

from __future__ import annotations

from reproduce import dynamics, memorize, regularize, svcca_claims, sweeps, synthetic

# name -> function(out_dir, *, preset, log) -> results dict (with "claims")
EXPERIMENTS = {
    "synthetic": synthetic.run,
    "memorize": memorize.run,
    "width": sweeps.run_width,
    "learning_rate": sweeps.run_lr,
    "dynamics": dynamics.run,
    "lstm_dynamics": dynamics.run_lstm,
    "svcca_projection": svcca_claims.run_projection,
    "freeze_training": svcca_claims.run_freeze,
    "class_sensitivity": svcca_claims.run_class_sensitivity,
    "architectures": svcca_claims.run_architectures,
    "regularize": regularize.run,
}
