"""The durable messaging service: streams capturing device topics, consumer groups, replay."""
