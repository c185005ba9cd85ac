namespace CircuitBreaker.Demo.Downstream;

/// <summary>What one downstream service saw, counted by the server itself.</summary>
/// <param name="Received">Requests that reached the server.</param>
/// <param name="Answered">Requests it answered (any status).</param>
/// <param name="Abandoned">Requests whose caller hung up before the answer (a slow answer past the caller's timeout).</param>
/// <param name="Untagged">Requests without a drill call id, or with one seen before: no record shows the breaker let them through.</param>
public sealed record ServerCounts(int Received, int Answered, int Abandoned, int Untagged);

/// <summary>What the server made of one request.</summary>
public enum ServerCallOutcome
{
    /// <summary>Still being answered.</summary>
    InProgress,

    /// <summary>Answered (any status).</summary>
    Answered,

    /// <summary>The caller hung up before the answer.</summary>
    Abandoned,
}
