"""The few stream-json events of ``claude -p --output-format stream-json`` that we read.

Unknown fields are ignored so a CLI upgrade cannot break parsing; only what the supervisor
decides on is modelled. Observed shapes: ``../shared/claude-cli-facts.md`` (CLI 2.1.197).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Usage(_Lenient):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    @property
    def context_tokens(self) -> int:
        """What a request put into the context window: input plus both cache kinds."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens


class ModelUsage(_Lenient):
    input_tokens: int = Field(0, alias="inputTokens")
    output_tokens: int = Field(0, alias="outputTokens")
    cache_read_input_tokens: int = Field(0, alias="cacheReadInputTokens")
    cache_creation_input_tokens: int = Field(0, alias="cacheCreationInputTokens")
    cost_usd: float = Field(0.0, alias="costUSD")
    context_window: int | None = Field(None, alias="contextWindow")
    max_output_tokens: int | None = Field(None, alias="maxOutputTokens")


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
    retry_delay_ms: int = 0
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
