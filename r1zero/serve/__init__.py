"""Serving a reasoning model: an OpenAI-compatible HTTP API, a chat page and a terminal chat.

- `engine`: the batched generation engine (continuous batching over a KV cache, token streaming).
- `decoding`: per-sequence text: incremental detokenising, stop strings, sampling.
- `reasoning`: splitting a completion into `reasoning_content` (inside `<think>`) and `content`.
- `protocol`: request validation and OpenAI-shaped replies and errors.
- `app`: the FastAPI application (`r1zero serve`); `page`: its chat page.
- `chat`: the terminal chat (`r1zero chat`); `cli`: both commands.

Nothing here is imported by training or evaluation; FastAPI and uvicorn are needed only by `app`.
"""
