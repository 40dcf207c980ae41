# Reference values for tests/test_survival_reference.py, from R's survival package.
#
# Usage (from the repository root):
#   Rscript tests/reference/survival_reference.R [output.json]
# Default output: tests/reference/survival_reference.json (committed; the tests compare with a
# fresh run when Rscript is on PATH, else with the stored file).
#
# Data (committed beside this script; regenerate with make_survival_data.py):
#   rossi.csv             lifelines' load_rossi(): week, arrest, fin, age, race, wexp, mar, paro, prio
#   delayed_entry.csv     simulated respondents: entry, duration (months), event, recognition,
#                         empathy, segment (A/B/C)
#   counting_process.csv  the same respondents split into (start, stop] rows, customer_key,
#                         complaint_open (time-varying)
#   demo_respondents.csv  the demo study (cxlab.data.synth.write_demo(n_customers=3000, seed=7)), one row
#                         per respondent: entry, duration (tenure months), event, recognition,
#                         empathy, proximity, affect (scale points), dgc, segment (mass = reference)
#   demo_intervals.csv    its counting-process rows: customer_key (opaque), start, stop, event, the
#                         latest answer's scores and dgc, complaint_open,
#                         complaint_resolved_no_goodwill, segment
#                         (both written by make_demo_reference_data.py)
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = TRUE)
out <- if (length(args) >= 1) args[1] else "tests/reference/survival_reference.json"
here <- "tests/reference"

rossi <- read.csv(file.path(here, "rossi.csv"))
delayed <- read.csv(file.path(here, "delayed_entry.csv"))
cp <- read.csv(file.path(here, "counting_process.csv"))
delayed$segment <- factor(delayed$segment, levels = c("A", "B", "C"))
cp$segment <- factor(cp$segment, levels = c("A", "B", "C"))

coef_table <- function(fit) {
  s <- summary(fit)$coefficients
  se_col <- if ("robust se" %in% colnames(s)) "robust se" else "se(coef)"
  list(term = rownames(s), coef = unname(s[, "coef"]), se = unname(s[, se_col]),
       naive_se = unname(s[, "se(coef)"]), loglik = fit$loglik[2])
}

zph_table <- function(fit) {
  z <- cox.zph(fit, transform = "km", terms = FALSE)
  list(term = rownames(z$table), chisq = unname(z$table[, "chisq"]),
       df = unname(z$table[, "df"]), p = unname(z$table[, "p"]))
}

km_at <- function(fit, times) {
  s <- summary(fit, times = times, extend = TRUE)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else sub(".*=", "", as.character(s$strata))
  list(group = strata, time = s$time, n_risk = s$n.risk, surv = s$surv,
       lower = s$lower, upper = s$upper)
}

km_median <- function(fit) {
  q <- quantile(fit, probs = 0.5)
  nm <- if (is.null(fit$strata)) "all" else sub(".*=", "", names(fit$strata))
  list(group = nm, median = unname(as.vector(q$quantile)),
       lower = unname(as.vector(q$lower)), upper = unname(as.vector(q$upper)))
}

# Counting-process log-rank (survdiff accepts right-censored data only): O - E and the
# hypergeometric variance over risk sets {entry < t <= duration}. Checked below against
# survdiff on right-censored data (entry = 0).
logrank_cp <- function(entry, time, event, group) {
  lev <- sort(unique(group)); k <- length(lev)
  tt <- sort(unique(time[event == 1]))
  o_e <- rep(0, k); v <- matrix(0, k, k)
  for (t in tt) {
    atrisk <- entry < t & time >= t
    dead <- atrisk & time == t & event == 1
    n <- sum(atrisk); d <- sum(dead)
    nj <- sapply(lev, function(l) sum(atrisk & group == l))
    dj <- sapply(lev, function(l) sum(dead & group == l))
    o_e <- o_e + dj - d * nj / n
    if (n > 1) {
      f <- d * (n - d) / (n - 1) / n
      v <- v + f * (diag(nj) - outer(nj, nj) / n)
    }
  }
  chisq <- drop(o_e[-k] %*% solve(v[-k, -k, drop = FALSE], o_e[-k]))
  list(chisq = chisq, df = k - 1, p = pchisq(chisq, k - 1, lower.tail = FALSE))
}

ref <- list()
ref$r_version <- R.version.string
ref$survival_version <- as.character(packageVersion("survival"))

# --- Rossi, right-censored -------------------------------------------------------------
f_rossi <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                 data = rossi, ties = "efron")
ref$rossi_coxph <- coef_table(f_rossi)
f_rossi_rob <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                     data = rossi, ties = "efron", robust = TRUE)
ref$rossi_coxph_robust <- coef_table(f_rossi_rob)
ref$rossi_zph <- zph_table(f_rossi)
# case weights (w = 1 + age %% 3, so 1, 2 or 3)
rossi$w <- 1 + rossi$age %% 3
f_rossi_w <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio,
                   data = rossi, ties = "efron", weights = w)
ref$rossi_coxph_weighted <- coef_table(f_rossi_w)
ref$rossi_zph_weighted <- zph_table(f_rossi_w)
km_times <- c(5, 10, 20, 30, 40, 52)
ref$rossi_km <- km_at(survfit(Surv(week, arrest) ~ 1, data = rossi), km_times)
ref$rossi_km_fin <- km_at(survfit(Surv(week, arrest) ~ fin, data = rossi), km_times)
ref$rossi_km_loglog <- km_at(survfit(Surv(week, arrest) ~ 1, data = rossi, conf.type = "log-log"), km_times)
ref$rossi_km_plain <- km_at(survfit(Surv(week, arrest) ~ 1, data = rossi, conf.type = "plain"), km_times)
sd_fin <- survdiff(Surv(week, arrest) ~ fin, data = rossi)
ref$rossi_survdiff_fin <- list(chisq = sd_fin$chisq, df = 1,
                               p = pchisq(sd_fin$chisq, 1, lower.tail = FALSE))
sd_prio <- survdiff(Surv(week, arrest) ~ pmin(prio, 3), data = rossi)
ref$rossi_survdiff_prio3 <- list(chisq = sd_prio$chisq, df = 3,
                                 p = pchisq(sd_prio$chisq, 3, lower.tail = FALSE))
chk <- logrank_cp(rep(-1, nrow(rossi)), rossi$week, rossi$arrest, pmin(rossi$prio, 3))
stopifnot(abs(chk$chisq - sd_prio$chisq) < 1e-8)

# --- simulated delayed entry ------------------------------------------------------------
f_de <- coxph(Surv(entry, duration, event) ~ recognition + empathy + segment,
              data = delayed, ties = "efron")
ref$delayed_coxph <- coef_table(f_de)
# counting-process data need an id for robust = TRUE: one row per respondent, so cluster = row
delayed$row_id <- seq_len(nrow(delayed))
f_de_rob <- coxph(Surv(entry, duration, event) ~ recognition + empathy + segment,
                  data = delayed, ties = "efron", robust = TRUE, cluster = row_id)
ref$delayed_coxph_robust <- coef_table(f_de_rob)
ref$delayed_zph <- zph_table(f_de)
f_de_strata <- coxph(Surv(entry, duration, event) ~ recognition + empathy + strata(segment),
                     data = delayed, ties = "efron")
ref$delayed_coxph_strata <- coef_table(f_de_strata)
ref$delayed_zph_strata <- zph_table(f_de_strata)
de_times <- c(6, 12, 24, 36, 48)
km_de <- survfit(Surv(entry, duration, event) ~ 1, data = delayed)
km_de_seg <- survfit(Surv(entry, duration, event) ~ segment, data = delayed)
ref$delayed_km <- km_at(km_de, de_times)
ref$delayed_km_segment <- km_at(km_de_seg, de_times)
ref$delayed_median <- km_median(km_de)
ref$delayed_median_segment <- km_median(km_de_seg)
ref$delayed_logrank_segment <- logrank_cp(delayed$entry, delayed$duration, delayed$event,
                                          as.character(delayed$segment))
# right-censored view of the same data (time since survey), for survdiff and a KM median
delayed$time_since_survey <- delayed$duration - delayed$entry
sd_seg <- survdiff(Surv(time_since_survey, event) ~ segment, data = delayed)
ref$since_survey_survdiff_segment <- list(chisq = sd_seg$chisq, df = 2,
                                          p = pchisq(sd_seg$chisq, 2, lower.tail = FALSE))
ref$since_survey_median_segment <- km_median(survfit(Surv(time_since_survey, event) ~ segment,
                                                     data = delayed))

# --- counting process, cluster-robust ---------------------------------------------------
f_cp <- coxph(Surv(start, stop, event) ~ recognition + empathy + segment + complaint_open,
              data = cp, ties = "efron", cluster = customer_key)
ref$cp_coxph_cluster <- coef_table(f_cp)
ref$cp_zph <- zph_table(f_cp)

# --- demo study (issue 3) ----------------------------------------------------------------
# New entries go after the older ones, so the earlier part of the JSON stays byte-identical.
demo <- read.csv(file.path(here, "demo_respondents.csv"))
demo_cp <- read.csv(file.path(here, "demo_intervals.csv"))
demo$segment <- factor(demo$segment, levels = c("mass", "affluent", "private"))
demo_cp$segment <- factor(demo_cp$segment, levels = c("mass", "affluent", "private"))
# constructs enter per scale point; cxlab fits them per SD, and the tests rescale by its SD
f_demo <- coxph(Surv(entry, duration, event) ~ recognition + empathy + proximity + affect + dgc + segment,
                data = demo, ties = "efron")
ref$demo_coxph <- coef_table(f_demo)
ref$demo_zph <- zph_table(f_demo)
# KM on time since the survey (right-censored; the median is not reached in this follow-up)
demo$time_since_survey <- demo$duration - demo$entry
demo_times <- c(3, 6, 12, 24, 36)
km_demo <- survfit(Surv(time_since_survey, event) ~ 1, data = demo)
km_demo_seg <- survfit(Surv(time_since_survey, event) ~ segment, data = demo)
ref$demo_km_since_survey <- km_at(km_demo, demo_times)
ref$demo_km_since_survey_segment <- km_at(km_demo_seg, demo_times)
# duration - entry leaves round-off: times one day-count apart in exact arithmetic differ by a few
# ulps. survfit's default timefix = TRUE merges them (aeqSurv: 627 distinct values -> 339 day
# counts); timefix = FALSE keeps them apart, as cxlab.models.survival.km does today (see the tests).
ref$demo_km_since_survey_notimefix <- km_at(survfit(Surv(time_since_survey, event) ~ 1, data = demo,
                                                    timefix = FALSE), demo_times)
ref$demo_km_since_survey_segment_notimefix <- km_at(survfit(Surv(time_since_survey, event) ~ segment,
                                                            data = demo, timefix = FALSE), demo_times)
ref$demo_median_since_survey <- km_median(km_demo)
ref$demo_median_since_survey_segment <- km_median(km_demo_seg)
# the tenure clock with delayed entry at the survey: here the median is reached
ref$demo_median_tenure <- km_median(survfit(Surv(entry, duration, event) ~ 1, data = demo))
f_demo_cp <- coxph(Surv(start, stop, event) ~ recognition + empathy + proximity + affect + dgc + segment +
                     complaint_open + complaint_resolved_no_goodwill + cluster(customer_key),
                   data = demo_cp, ties = "efron")
ref$demo_cp_coxph_cluster <- coef_table(f_demo_cp)
ref$demo_cp_zph <- zph_table(f_demo_cp)

# --- Harrell's concordance and its variance (cxlab.models.survival.evaluate.harrell_c) -------------
# concordance(..., reverse = TRUE): a higher risk score should go with a shorter time; ties in
# time and in the score (rossi has both) count as R counts them; var is R's jackknife variance.
conc <- function(fit) list(concordance = unname(fit$concordance), var = unname(fit$var))
rossi$lin_risk <- rossi$prio - 0.05 * rossi$age
ref$rossi_concordance_prio <- conc(concordance(Surv(week, arrest) ~ prio, data = rossi, reverse = TRUE))
ref$rossi_concordance_lin <- conc(concordance(Surv(week, arrest) ~ lin_risk, data = rossi, reverse = TRUE))
delayed$neg_recognition <- -delayed$recognition
ref$delayed_concordance_since_survey <- conc(concordance(Surv(time_since_survey, event) ~ neg_recognition,
                                                         data = delayed, reverse = TRUE))

writeLines(toJSON(ref, digits = I(15), auto_unbox = TRUE, pretty = TRUE), out)
