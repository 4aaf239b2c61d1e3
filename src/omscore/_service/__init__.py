"""The application layer, one module per pillar; :mod:`omscore.service` assembles ``OMS``."""
