"""SDMX: the published index values as the dataflow ``BCPI:INDICES(1.0)``, for the clients
of statistical offices (SDMX-REST 2.x and 1.x, SDMX-ML, SDMX-CSV, SDMX-JSON)."""

AGENCY = "BCPI"
FLOW = "INDICES"
VERSION = "1.0"
DSD_URN = f"urn:sdmx:org.sdmx.infomodel.datastructure.DataStructure={AGENCY}:{FLOW}({VERSION})"
FLOW_URN = f"urn:sdmx:org.sdmx.infomodel.datastructure.Dataflow={AGENCY}:{FLOW}({VERSION})"
DIMENSIONS = ("FREQ", "INDEX")
"""The key's dimensions, in order (the time dimension TIME_PERIOD follows them)."""
FREQUENCIES = {"D": "Daily"}
