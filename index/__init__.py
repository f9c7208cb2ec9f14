"""Price assessments, commodity, sector and composite indices, and researcher formulas."""
