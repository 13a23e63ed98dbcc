"""The lab record: one section per program run, collected into one document."""
