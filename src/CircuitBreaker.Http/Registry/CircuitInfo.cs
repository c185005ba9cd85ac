namespace CircuitBreaker.Http;

/// <summary>What the registry knows about one circuit at the moment it was listed.</summary>
public sealed class CircuitInfo
{
    internal CircuitInfo(CircuitKey key, CircuitSnapshot snapshot)
    {
        Key = key;
        State = snapshot.State;
        ConsecutiveFailures = snapshot.ConsecutiveFailures;
        FailureRatio = snapshot.FailureRatio;
        OpenedAt = snapshot.OpenedAt;
        RetryAt = snapshot.RetryAt;
    }

    /// <summary>Gets the circuit's client name and downstream authority.</summary>
    public CircuitKey Key { get; }

    /// <summary>Gets the name of the client in <c>IHttpClientFactory</c>.</summary>
    public string ClientName => Key.ClientName;

    /// <summary>Gets the downstream authority, <c>scheme://host:port</c>.</summary>
    public string Authority => Key.Authority;

    /// <summary>Gets the state; an open circuit whose break has elapsed is reported as <see cref="CircuitState.HalfOpen"/>.</summary>
    public CircuitState State { get; }

    /// <summary>Gets the number of consecutive failures counted while closed.</summary>
    public int ConsecutiveFailures { get; }

    /// <summary>Gets the failure ratio over the sampling window, or <see langword="null"/> when <see cref="CircuitBreakerOptions.FailureRatio"/> is off.</summary>
    public double? FailureRatio { get; }

    /// <summary>Gets when the circuit last opened (or was isolated), or <see langword="null"/> while closed.</summary>
    public DateTimeOffset? OpenedAt { get; }

    /// <summary>Gets when a probe may be sent, or <see langword="null"/> while closed or isolated.</summary>
    public DateTimeOffset? RetryAt { get; }
}
