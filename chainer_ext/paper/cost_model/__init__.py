"""The cost model of Section 4: constants -> model -> PCIe derating -> text."""
