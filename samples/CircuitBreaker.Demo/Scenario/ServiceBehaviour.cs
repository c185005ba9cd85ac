using System.Globalization;

namespace CircuitBreaker.Demo.Scenario;

/// <summary>What a downstream service does during one phase of the drill.</summary>
public enum BehaviourKind
{
    /// <summary>Answers every request with 200 OK.</summary>
    Healthy,

    /// <summary>Answers a share (<see cref="ServiceBehaviour.FailureRate"/>) of the requests with an error status.</summary>
    Error,

    /// <summary>Answers after <see cref="ServiceBehaviour.Delay"/>, typically longer than the client's AttemptTimeout.</summary>
    Slow,

    /// <summary>The server is stopped: connections to its port are refused.</summary>
    Down,
}

/// <summary>A downstream service's behaviour in one phase: healthy, errors, slow or down.</summary>
/// <param name="Kind">The kind of behaviour.</param>
/// <param name="Status">The status of an error answer (<see cref="BehaviourKind.Error"/>).</param>
/// <param name="FailureRate">The share of requests, 0 to 1, answered with <paramref name="Status"/> (<see cref="BehaviourKind.Error"/>).</param>
/// <param name="Delay">How long each answer takes (<see cref="BehaviourKind.Slow"/>).</param>
public sealed record ServiceBehaviour(BehaviourKind Kind, int Status = 503, double FailureRate = 1, TimeSpan Delay = default)
{
    /// <summary>Gets the behaviour of a service a phase does not mention.</summary>
    public static ServiceBehaviour Healthy { get; } = new(BehaviourKind.Healthy);

    /// <summary>Describes the behaviour in a few words, e.g. <c>503 x 80%</c> or <c>slow 1500 ms</c>.</summary>
    public override string ToString() => Kind switch
    {
        BehaviourKind.Error => string.Create(CultureInfo.InvariantCulture, $"{Status} x {FailureRate:0%}"),
        BehaviourKind.Slow => string.Create(CultureInfo.InvariantCulture, $"slow {Delay.TotalMilliseconds:0} ms"),
        BehaviourKind.Down => "down",
        _ => "healthy",
    };
}
