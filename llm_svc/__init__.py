"""llm_svc: one gRPC API in front of any OpenAI-compatible language model."""
