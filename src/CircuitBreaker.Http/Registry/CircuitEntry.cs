namespace CircuitBreaker.Http;

/// <summary>One circuit as the registry holds it: its state machine, and the HTTP and fallback rules in force for its host.</summary>
internal sealed class CircuitEntry
{
    private volatile HttpFailureClassifier _classifier;
    private volatile FallbackPolicy _fallback;

    public CircuitEntry(CircuitKey key, HostKey host, CircuitStateMachine machine, CircuitBreakerOptions hostOptions)
    {
        Key = key;
        Host = host;
        Machine = machine;
        _classifier = HttpFailureClassifier.From(hostOptions);
        _fallback = FallbackPolicy.From(hostOptions);
    }

    public CircuitKey Key { get; }

    public HostKey Host { get; }

    public CircuitStateMachine Machine { get; }

    public HttpFailureClassifier Classifier => _classifier;

    public FallbackPolicy Fallback => _fallback;

    public void Apply(CircuitBreakerOptions hostOptions)
    {
        Machine.UpdateSettings(BreakerSettings.From(hostOptions));
        _classifier = HttpFailureClassifier.From(hostOptions);
        _fallback = FallbackPolicy.From(hostOptions);
    }
}
