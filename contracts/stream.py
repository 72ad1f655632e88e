"""The few stream-json events of ``claude -p --output-format stream-json`` that we read.

Unknown fields are ignored so a CLI upgrade cannot break parsing; only what the supervisor
decides on is modelled. Observed shapes: ``../shared/claude-cli-facts.md`` (CLI 2.1.197 and
2.1.332) and the real captures in ``tests/data/real`` (2.1.4, 2.1.7).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class CacheCreation(_Lenient):
    ephemeral_1h_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0


class Usage(_Lenient):
    """``result.usage``: the main model only, for this invocation (or, in a later result of the
    same process, for the turns since the previous result)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation: CacheCreation | None = None

    @property
    def context_tokens(self) -> int:
        """What a request put into the context window: input plus both cache kinds."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class ModelUsage(_Lenient):
    """One model's figures in ``modelUsage``: cumulative for the process (every CLI version) and,
    on a resumed session with 2.1.332, for the whole session."""

    input_tokens: int = Field(0, alias="inputTokens")
    output_tokens: int = Field(0, alias="outputTokens")
    cache_read_input_tokens: int = Field(0, alias="cacheReadInputTokens")
    cache_creation_input_tokens: int = Field(0, alias="cacheCreationInputTokens")
    cost_usd: float = Field(0.0, alias="costUSD")
    context_window: int | None = Field(None, alias="contextWindow")
    max_output_tokens: int | None = Field(None, alias="maxOutputTokens")
    cache_creation_1h: int | None = Field(None, alias="cacheCreationEphemeral1hInputTokens")


class PermissionDenial(_Lenient):
    tool_name: str = "?"
    tool_use_id: str | None = None


class ResultEvent(_Lenient):
    """The last line of a worker's stream. API failures arrive as subtype "success" with
    ``is_error`` true and ``api_error_status`` set: read ``is_error``, never ``subtype`` alone."""

    type: str = "result"
    subtype: str = "success"
    is_error: bool = False
    api_error_status: int | None = None
    result: str | None = None
    num_turns: int = 0
    duration_ms: int | None = None
    session_id: str | None = None
    total_cost_usd: float = 0.0
    usage: Usage = Field(default_factory=Usage)
    model_usage: dict[str, ModelUsage] = Field(default_factory=dict, alias="modelUsage")
    permission_denials: list[PermissionDenial] = Field(default_factory=list)
    terminal_reason: str | None = None
    stop_reason: str | None = None
    # 2.1.332: 0-based index of this result in the process, and the per-model usage since the
    # previous result (or since this invocation began): never cumulative.
    result_index: int | None = None
    model_usage_since_last_result: dict[str, ModelUsage] | None = None


class RateLimitInfo(_Lenient):
    status: str | None = None
    resets_at: float | None = Field(None, alias="resetsAt")
    rate_limit_type: str | None = Field(None, alias="rateLimitType")
    utilization: float | None = None
    is_using_overage: bool | None = Field(None, alias="isUsingOverage")


class RateLimitEvent(_Lenient):
    type: str = "rate_limit_event"
    rate_limit_info: RateLimitInfo = Field(default_factory=RateLimitInfo)


class ApiRetryEvent(_Lenient):
    type: str = "system"
    subtype: str = "api_retry"
    attempt: int = 0
    max_retries: int = 0
    retry_delay_ms: float = 0  # a float in 2.1.197, an int in 2.1.332
    error_status: int | None = None
    error: str | None = None


class InitEvent(_Lenient):
    type: str = "system"
    subtype: str = "init"
    session_id: str | None = None
    model: str | None = None
    permission_mode: str | None = Field(None, alias="permissionMode")
    claude_code_version: str | None = None
    cwd: str | None = None


class CompactMetadata(_Lenient):
    trigger: str | None = None  # "auto" or "manual"
    pre_tokens: int | None = None
    post_tokens: int | None = None


class CompactBoundaryEvent(_Lenient):
    """The CLI compacted the conversation (by itself at ~83.5 % of a 200k window)."""

    type: str = "system"
    subtype: str = "compact_boundary"
    compact_metadata: CompactMetadata = Field(default_factory=CompactMetadata)
