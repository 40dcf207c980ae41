# Reference values for tests/test_value.py (restricted mean survival time, delayed entry).
# Run from the repository root:  Rscript tests/reference/value_reference.R
# Produces tests/reference/value_reference.json (stored, so the test runs without R);
# an optional argument writes the JSON elsewhere (the test does that to re-check against live R).
# R 4.2.2, survival 3.5-3: print.survfit(..., rmean = H) reports rmean and its se.
library(survival)
library(jsonlite)
d <- read.csv("tests/reference/value_rmst_data.csv")
out <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            results = list())
for (H in c(12, 24)) {
  # pooled
  fit <- survfit(Surv(entry, duration, event) ~ 1, data = d)
  tab <- summary(fit, rmean = H)$table
  out$results[[length(out$results) + 1]] <- list(group = "all", horizon = H,
      rmean = unname(tab["rmean"]), se = unname(tab["se(rmean)"]))
  # by group
  fitg <- survfit(Surv(entry, duration, event) ~ group, data = d)
  tabg <- summary(fitg, rmean = H)$table
  for (i in seq_len(nrow(tabg))) {
    out$results[[length(out$results) + 1]] <- list(group = sub("group=", "", rownames(tabg)[i]),
        horizon = H, rmean = unname(tabg[i, "rmean"]), se = unname(tabg[i, "se(rmean)"]))
  }
}
args <- commandArgs(trailingOnly = TRUE)
out_path <- if (length(args) > 0) args[1] else "tests/reference/value_reference.json"
write(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE), out_path)
