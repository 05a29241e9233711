"""Webhook delivery: telling the URL a client gave at submit how its prediction ended.

A background worker of its own job, beside `i2v.worker` (which renders): it claims owed
deliveries from the outbox (`i2v.store.outbox`), renders each as its dialect shows it
(`i2v.dialects`), signs it and posts it through the intake's SSRF guard.

Each dialect gets what its clients expect. WaveSpeed: the bare prediction object (no
envelope), signed as WaveSpeed signs: `webhook-signature: v3,<hex HMAC-SHA256>` over
`{webhook-id}.{webhook-timestamp}.{body}`, keyed by the `whsec_` secret's text. RunComfy
documents no signing, so its result object is signed by the Standard Webhooks scheme
(`v1,<base64>`, key base64-decoded), which its libraries verify. Each owner has one secret,
derived from the server's, shown by `GET /api/v3/webhook/secret`.

Delivery is at least once: the predictions row is the outbox, a 2xx answer within the
timeout is success, anything else is retried with backoff until the attempts run out,
except 410 Gone and a URL the SSRF guard refuses, which end it. `webhook-id` (the
prediction id) stays the same across attempts, for deduplication.
"""

from __future__ import annotations
