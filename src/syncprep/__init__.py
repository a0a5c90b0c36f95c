"""syncprep: find and fix the Active Directory objects that break Microsoft 365 directory sync."""

__version__ = "0.1.0"
