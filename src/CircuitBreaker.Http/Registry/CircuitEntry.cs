namespace CircuitBreaker.Http;

/// <summary>One circuit as the registry holds it: its state machine and the HTTP rules in force for its host.</summary>
internal sealed class CircuitEntry
{
    private volatile HttpFailureClassifier _classifier;

    public CircuitEntry(CircuitKey key, HostKey host, CircuitStateMachine machine, HttpFailureClassifier classifier)
    {
        Key = key;
        Host = host;
        Machine = machine;
        _classifier = classifier;
    }

    public CircuitKey Key { get; }

    public HostKey Host { get; }

    public CircuitStateMachine Machine { get; }

    public HttpFailureClassifier Classifier => _classifier;

    public void Apply(CircuitBreakerOptions hostOptions)
    {
        Machine.UpdateSettings(BreakerSettings.From(hostOptions));
        _classifier = HttpFailureClassifier.From(hostOptions);
    }
}
