"""Survival analysis: Kaplan–Meier, log-rank, Cox (fixed and time-varying), PH tests, AFT, evaluation."""
