"""Chat completions through the aiquota proxy with the official OpenAI Python SDK, as a new user would write
them (default retries). Usage: sdk_calls.py MODE... with MODE plain, stream or huge (max_tokens beyond the
plan, a denial that can never pass); PROXY_BASE_URL and PROXY_TOKEN in the environment. Prints one JSON object:
per mode, what the SDK returned or raised and how long it took."""

import json
import os
import sys
import time

import openai

client = openai.OpenAI(base_url=os.environ["PROXY_BASE_URL"], api_key=os.environ["PROXY_TOKEN"])


def call(mode):
    started = time.monotonic()
    try:
        res = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "Say hello"}],
            max_tokens=50_000 if mode == "huge" else 20,
            stream=mode == "stream",
        )
        if mode == "stream":
            text = "".join(c.choices[0].delta.content or "" for c in res if c.choices)
        else:
            text = res.choices[0].message.content
        return {"ok": True, "text": text, "seconds": time.monotonic() - started}
    except openai.APIStatusError as e:
        return {
            "ok": False,
            "status": e.status_code,
            "class": type(e).__name__,
            "str": str(e),
            "body": e.body,
            "code": e.code,
            "type": e.type,
            "seconds": time.monotonic() - started,
        }


print(json.dumps({mode: call(mode) for mode in sys.argv[1:]}))
