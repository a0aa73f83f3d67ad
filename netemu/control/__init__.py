"""The control plane: MQTT topics and payloads, broker start-up, and the controller.

See docs/control.md for the topic tree.
"""
