"""Insight: what the models mean for the business — perception segments (the disappointed good
customers), value (concentration, retained months, CLV, what-if) and the findings' wording."""
