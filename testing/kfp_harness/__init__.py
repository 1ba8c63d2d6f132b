"""A re-enactment of KFP's driver and launcher for running a compiled spec on this machine."""
