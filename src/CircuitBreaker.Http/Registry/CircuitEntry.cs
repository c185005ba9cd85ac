using System.Diagnostics;

namespace CircuitBreaker.Http;

/// <summary>One circuit as the registry holds it: its state machine, and the HTTP and fallback rules in force for its host.</summary>
/// <remarks>
/// It extends the state machine rather than holding one, so that the two are one object: with many hosts, finding a
/// circuit is a chain of cache misses (the table's slot, the circuit), and a separate machine would be one more on
/// every call. The machine itself still knows nothing about HTTP.
/// </remarks>
internal sealed class CircuitEntry : CircuitStateMachine
{
    private readonly ClientCircuits _owner;
    private Labels? _labels;
    private volatile HttpFailureClassifier _classifier;
    private volatile FallbackPolicy _fallback;
    private volatile bool _enforce;
    private volatile CircuitLimits? _limits;
    private long _lastUsed;

    /// <param name="owner">The client's circuits, which it belongs to and reports its transitions to.</param>
    /// <param name="host">Its lookup key.</param>
    /// <param name="rules">The rules of its host's options, shared with every circuit that has the same options.</param>
    /// <param name="generation">The registry's generation at creation, its first <see cref="LastUsed"/>.</param>
    /// <param name="timeProvider">The clock of the state machine.</param>
    public CircuitEntry(ClientCircuits owner, HostKey host, CircuitRules rules, long generation, TimeProvider timeProvider)
        : base(rules.Settings, timeProvider)
    {
        _owner = owner;
        Host = host;
        Hash = host.GetHashCode();
        var hostOptions = rules.Options;
        _limits = CircuitLimits.From(hostOptions);
        _classifier = rules.Classifier;
        _fallback = rules.Fallback;
        _enforce = hostOptions.Enforce;
        _lastUsed = generation;
    }

    /// <summary>The circuit's key, whose authority string is built the first time something needs it.</summary>
    public CircuitKey Key => new(_owner.ClientName, LabelsOf().Authority);

    public HostKey Host { get; }

    /// <summary>The registry that holds the circuit.</summary>
    public CircuitBreakerRegistry Registry => _owner.Registry;

    /// <summary>The hash of <see cref="Host"/>, kept for the table's lookups.</summary>
    public int Hash { get; }

    /// <summary>The circuit's state machine: the entry itself, seen as one.</summary>
    public CircuitStateMachine Machine => this;

    public HttpFailureClassifier Classifier => _classifier;

    public FallbackPolicy Fallback => _fallback;

    /// <summary>The load-shedding limits of the host, or <see langword="null"/> when it has none.</summary>
    public CircuitLimits? Limits => _limits;

    /// <summary>Whether the circuit turns calls away; <see langword="false"/> in observe-only mode.</summary>
    public bool Enforce => _enforce;

    /// <summary>
    /// The generation of its client's circuits (see <see cref="ClientCircuits"/>) when a call last went through
    /// this circuit: eviction takes the circuits unused for the most generations first.
    /// </summary>
    public long LastUsed => Volatile.Read(ref _lastUsed);

    /// <summary>The tags every instrument carries for this circuit.</summary>
    public TagList Tags() => new()
    {
        { "http.client.name", _owner.ClientName },
        { "server.address", Host.Host },
        { "server.port", LabelsOf().Port },
    };

    /// <summary>
    /// <see cref="Tags"/> as a span starts with them, built once per circuit: a <see cref="TagList"/> passed where spans
    /// take an enumerable is boxed, with its enumerator, for every span (about 300 bytes of each rejection's span).
    /// </summary>
    public KeyValuePair<string, object?>[] SpanTags()
    {
        var labels = LabelsOf();
        return labels.SpanTags ??= [.. Tags()]; // racing threads build equal arrays, and either may be kept
    }

    /// <summary>Notes a call; written only when the generation moved, so that a busy circuit's callers do not fight over its cache line.</summary>
    public void MarkUsed(long generation)
    {
        if (_lastUsed != generation)
        {
            Volatile.Write(ref _lastUsed, generation);
        }
    }

    public void Apply(CircuitRules rules)
    {
        var hostOptions = rules.Options;

        _limits = CircuitLimits.Update(_limits, hostOptions);
        UpdateSettings(rules.Settings);
        _classifier = rules.Classifier;
        _fallback = rules.Fallback;
        _enforce = hostOptions.Enforce;
    }

    protected override void OnTransition(CircuitTransition transition) => _owner.Registry.OnTransition(this, transition);

    private Labels LabelsOf() => _labels ?? CreateLabels();

    // Two threads racing here build equal labels, and either may be kept.
    private Labels CreateLabels() => _labels = new Labels(Host.Authority, Host.Port);

    /// <summary>
    /// What only logs, events, exceptions, snapshots and listened-to instruments need: the authority string and the
    /// port boxed once for tags. Built the first time one of them asks, since most circuits of an app with many
    /// hosts never do, and kept apart so that a circuit that never asks carries one reference instead of two.
    /// </summary>
    private sealed class Labels(string authority, object port)
    {
        public string Authority { get; } = authority;

        public object Port { get; } = port;

        /// <summary>The span tags, built the first time a span of the circuit starts.</summary>
        public KeyValuePair<string, object?>[]? SpanTags { get; set; }
    }
}
