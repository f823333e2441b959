"""Loopback servers that speak the vendors' exact streaming wire formats, for tests.

``openai_server.OpenAIServer`` answers ``POST /v1/chat/completions`` and
``anthropic_server.AnthropicServer`` answers ``POST /v1/messages``; point the real SDK at their
``base_url``. Each reply is scripted per test and every request is recorded, with the moment the
client closed its connection (see ``_loopback.RecordedRequest``).
"""
