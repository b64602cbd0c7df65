"""The MQTT adapter (aiomqtt): the broker link, topics, Home Assistant discovery."""
