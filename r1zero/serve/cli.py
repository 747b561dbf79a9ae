"""The `serve` and `chat` subcommands, added to the `r1zero` command by `r1zero.cli`.

    r1zero serve MODEL [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--template chat]
                       [--allowed-hosts NAME,...] [--allowed-origins ORIGIN,...] ...
    r1zero chat MODEL [--template chat] [--temperature 0.6] [--max-tokens 256] ...

`serve` binds 127.0.0.1 unless told otherwise; the API key may also come from R1ZERO_API_KEY. On
loopback it answers loopback `Host` names only, and it refuses cross-origin browser requests unless
their origin is allowed (r1zero.serve.guard).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model folder (a Hugging Face folder, e.g. runs/x/final) or hub id")
    p.add_argument("--template", default="chat",
                   help="how chat messages become a prompt: chat (the tokenizer's chat template), r1_zero or plain "
                        "(the last user message as is; for the tiny arithmetic models)")
    p.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads; 0 = torch's default")
    p.add_argument("--seed", type=int, default=None, help="seed of the sampler for unseeded requests")


def comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def add_commands(sub) -> None:
    serve = sub.add_parser("serve", help="OpenAI-compatible API and chat page for a model")
    add_model_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--api-key", default=os.environ.get("R1ZERO_API_KEY"),
                       help="require `Authorization: Bearer KEY` on /v1 (default: $R1ZERO_API_KEY, else none)")
    serve.add_argument("--served-model-name", default="", help="the model id clients use (default: folder name)")
    serve.add_argument("--max-batch", type=int, default=32, help="sequences decoded together")
    serve.add_argument("--max-waiting", type=int, default=256, help="sequences queued beyond the batch; more get 429")
    serve.add_argument("--max-n", type=int, default=8, help="most choices (n) per request")
    serve.add_argument("--max-tokens", type=int, default=512, help="max_tokens of requests that give none")
    serve.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get 413")
    serve.add_argument("--allowed-hosts", type=comma_list, action="extend", default=[], metavar="NAME,...",
                       help="Host names answered besides loopback ones when bound to loopback, e.g. behind a "
                            "proxy (* = any); other Hosts get 400, which stops DNS rebinding")
    serve.add_argument("--allowed-origins", type=comma_list, action="extend", default=[], metavar="ORIGIN,...",
                       help="web pages of other origins allowed to call the API, with CORS, e.g. "
                            "http://localhost:3000 (* = any); other cross-origin requests get 403")
    serve.set_defaults(func=serve_command)

    chat = sub.add_parser("chat", help="chat with a model in the terminal (thinking shown dimmed)")
    add_model_options(chat)
    chat.add_argument("--system", default=None, help="a system message")
    chat.add_argument("--temperature", type=float, default=0.6)
    chat.add_argument("--top-p", type=float, default=0.95)
    chat.add_argument("--max-tokens", type=int, default=256)
    chat.set_defaults(func=chat_command)


def load(args):
    import torch

    from r1zero.models.io import load_model, load_tokenizer
    from r1zero.tasks.templates import TEMPLATES

    TEMPLATES.get(args.template)  # an unknown template fails before the model loads
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    return load_model(args.model, args.dtype, args.device), load_tokenizer(args.model)


def serve_command(args) -> int:
    import uvicorn

    from r1zero.serve.app import ServerOptions, create_app
    from r1zero.serve.engine import Engine
    from r1zero.serve.jobs import Generator

    model, tokenizer = load(args)
    name = args.served_model_name or Path(str(args.model).rstrip("/")).name
    engine = Engine(model, tokenizer, max_batch=args.max_batch, max_waiting=args.max_waiting, seed=args.seed).start()
    generator = Generator(model, tokenizer, engine)
    opts = ServerOptions(name, args.template, args.api_key, args.max_body_bytes, args.max_n, args.max_tokens,
                         bind_host=args.host, allowed_hosts=tuple(args.allowed_hosts),
                         allowed_origins=tuple(args.allowed_origins))
    app = create_app(tokenizer, generator, opts)
    print(f"serving {name} on http://{args.host}:{args.port} (chat page at /, API at /v1)", flush=True)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    finally:
        generator.close()
    return 0


def chat_command(args) -> int:
    from r1zero.serve.chat import ChatOptions, run_chat

    model, tokenizer = load(args)
    opts = ChatOptions(args.template, args.system, args.temperature, args.top_p, args.max_tokens, args.seed)
    return run_chat(model, tokenizer, Path(str(args.model).rstrip("/")).name, opts)
