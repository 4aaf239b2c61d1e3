"""Adapters: stores, carriers and payment gateways that plug into the ports."""
