namespace CircuitBreaker.Http;

/// <summary>
/// The immutable rules prepared from one host's options: how to classify outcomes, what to fall back on, and
/// the state machine's settings. Every circuit whose host has no override of its own shares one instance, so
/// that many circuits cost little memory, and a lookup over many hosts finds the rules already in the CPU cache.
/// </summary>
internal sealed class CircuitRules
{
    private CircuitRules(CircuitBreakerOptions options)
    {
        Options = options;
        Classifier = HttpFailureClassifier.From(options);
        Fallback = FallbackPolicy.From(options);
        Settings = BreakerSettings.From(options);
    }

    /// <summary>The options these rules were prepared from, so that a circuit with the same ones can reuse them.</summary>
    public CircuitBreakerOptions Options { get; }

    public HttpFailureClassifier Classifier { get; }

    public FallbackPolicy Fallback { get; }

    public BreakerSettings Settings { get; }

    public static CircuitRules From(CircuitBreakerOptions options) => new(options);
}
