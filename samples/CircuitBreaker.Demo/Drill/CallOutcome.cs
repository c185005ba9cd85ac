namespace CircuitBreaker.Demo.Drill;

/// <summary>What became of one request a caller sent. Every request gets exactly one.</summary>
public enum CallOutcome
{
    /// <summary>The downstream answered with a success status.</summary>
    DownstreamOk,

    /// <summary>The downstream answered with an error status (the breaker passes it on unchanged).</summary>
    DownstreamError,

    /// <summary>The circuit was open; the last good response to the same request answered (<c>X-Circuit-Fallback: cache</c>).</summary>
    Cache,

    /// <summary>The circuit was open; the alternate backend answered.</summary>
    Alternate,

    /// <summary>The circuit was open; the configured degraded response answered.</summary>
    Degraded,

    /// <summary>The circuit was open; the custom <c>OnOpen</c> delegate answered.</summary>
    Custom,

    /// <summary>The circuit was open and no fallback answered: <c>CircuitOpenException</c>.</summary>
    Rejected,

    /// <summary>The call was let through and the breaker's AttemptTimeout ended it.</summary>
    FailedTimeout,

    /// <summary>The call was let through and could not connect (refused, reset): <c>HttpRequestException</c>.</summary>
    FailedConnection,

    /// <summary>The call was let through and failed in another way.</summary>
    FailedOther,

    /// <summary>The drill was interrupted (Ctrl+C) while the call was in flight.</summary>
    Cancelled,
}

/// <summary>Tells the outcomes apart.</summary>
public static class CallOutcomes
{
    /// <summary>The header the breaker puts on every fallback response.</summary>
    public const string FallbackHeader = "X-Circuit-Fallback";

    /// <summary>Classifies a response: a fallback by its header, otherwise the downstream's own answer.</summary>
    public static CallOutcome Of(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        if (!response.Headers.TryGetValues(FallbackHeader, out var values))
        {
            return response.IsSuccessStatusCode ? CallOutcome.DownstreamOk : CallOutcome.DownstreamError;
        }

        return values.FirstOrDefault() switch
        {
            "cache" => CallOutcome.Cache,
            "alternate" => CallOutcome.Alternate,
            "degraded" => CallOutcome.Degraded,
            _ => CallOutcome.Custom,
        };
    }

    /// <summary>Gets whether the outcome is an answer from a fallback.</summary>
    public static bool IsFallback(this CallOutcome outcome) => outcome is CallOutcome.Cache or CallOutcome.Alternate or CallOutcome.Degraded or CallOutcome.Custom;

    /// <summary>Gets whether the breaker let the call through to the downstream.</summary>
    public static bool WasLetThrough(this CallOutcome outcome) =>
        outcome is CallOutcome.DownstreamOk or CallOutcome.DownstreamError or CallOutcome.FailedTimeout or CallOutcome.FailedConnection or CallOutcome.FailedOther;
}
