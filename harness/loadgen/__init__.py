"""Locust integration: guest users, conversation flow, shapes, embedded simulator."""
