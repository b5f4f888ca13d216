//! Conformance: wrangler, a client no one here wrote, works against the sandbox.
