"""The upazila hub: a DHIS2-compatible edge appliance for Upazila Health Complexes."""

__version__ = "0.1.0"
