"""The paper's side: its reported numbers, a run read back and summarized, the report
that compares runs with the paper, and the cost model of Section 4."""
