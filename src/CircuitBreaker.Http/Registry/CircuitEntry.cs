using System.Diagnostics;

namespace CircuitBreaker.Http;

/// <summary>One circuit as the registry holds it: its state machine, and the HTTP and fallback rules in force for its host.</summary>
internal sealed class CircuitEntry
{
    private readonly object _port;
    private volatile HttpFailureClassifier _classifier;
    private volatile FallbackPolicy _fallback;
    private volatile bool _enforce;
    private volatile CircuitLimits? _limits;

    public CircuitEntry(CircuitKey key, HostKey host, Func<CircuitEntry, CircuitStateMachine> createMachine, CircuitBreakerOptions hostOptions, TimeProvider timeProvider)
    {
        _limits = CircuitLimits.From(hostOptions, timeProvider);
        Key = key;
        Host = host;
        _port = host.Port; // boxed once, not on every measurement
        _classifier = HttpFailureClassifier.From(hostOptions);
        _fallback = FallbackPolicy.From(hostOptions);
        _enforce = hostOptions.Enforce;
        Machine = createMachine(this);
    }

    public CircuitKey Key { get; }

    public HostKey Host { get; }

    public CircuitStateMachine Machine { get; }

    public HttpFailureClassifier Classifier => _classifier;

    public FallbackPolicy Fallback => _fallback;

    /// <summary>The load-shedding limits of the host, or <see langword="null"/> when it has none.</summary>
    public CircuitLimits? Limits => _limits;

    /// <summary>Whether the circuit turns calls away; <see langword="false"/> in observe-only mode.</summary>
    public bool Enforce => _enforce;

    /// <summary>The tags every instrument carries for this circuit.</summary>
    public TagList Tags() => new()
    {
        { "http.client.name", Key.ClientName },
        { "server.address", Host.Host },
        { "server.port", _port },
    };

    public void Apply(CircuitBreakerOptions hostOptions, TimeProvider timeProvider)
    {
        // New limits start empty-handed: permits held under the old ones are released into those, unharmed.
        Interlocked.Exchange(ref _limits, CircuitLimits.From(hostOptions, timeProvider))?.Dispose();
        Machine.UpdateSettings(BreakerSettings.From(hostOptions));
        _classifier = HttpFailureClassifier.From(hostOptions);
        _fallback = FallbackPolicy.From(hostOptions);
        _enforce = hostOptions.Enforce;
    }
}
