using CircuitBreaker.Http;

namespace CircuitBreaker.Demo.Drill;

/// <summary>One state change of a circuit, as <see cref="ICircuitBreakerRegistry.StateChanged"/> reported it.</summary>
/// <param name="Service">The client (and service) name.</param>
/// <param name="Authority">The circuit's downstream, <c>http://127.0.0.1:port</c>.</param>
/// <param name="From">The state before.</param>
/// <param name="To">The state after.</param>
/// <param name="At">When it changed, from the registry's clock.</param>
/// <param name="Elapsed">When it changed, since the drill's start.</param>
/// <param name="BreakDuration">How long the circuit stays open, for a change to Open.</param>
public sealed record TransitionRecord(string Service, string Authority, CircuitState From, CircuitState To, DateTimeOffset At, TimeSpan Elapsed, TimeSpan? BreakDuration)
{
    /// <summary>Gets the change as <c>Closed -> Open</c>.</summary>
    public string Change => $"{From} -> {To}";
}

/// <summary>Every state change of every circuit during the drill, in order.</summary>
public sealed class TransitionLog
{
    private readonly Lock _lock = new();
    private readonly List<TransitionRecord> _records = [];

    /// <summary>Occurs after a change was recorded; on whatever thread the registry reported it.</summary>
    public event Action<TransitionRecord>? Recorded;

    /// <summary>Listens to <paramref name="registry"/> until the returned object is disposed.</summary>
    public IDisposable Follow(ICircuitBreakerRegistry registry, DrillClock clock)
    {
        ArgumentNullException.ThrowIfNull(registry);
        void OnChanged(object? sender, CircuitStateChangedEventArgs e)
        {
            var record = new TransitionRecord(e.Key.ClientName, e.Key.Authority, e.PreviousState, e.State, e.Timestamp, clock.ElapsedAt(e.Timestamp), e.BreakDuration);
            lock (_lock)
            {
                _records.Add(record);
            }

            Recorded?.Invoke(record);
        }

        registry.StateChanged += OnChanged;
        return new Unsubscriber(() => registry.StateChanged -= OnChanged);
    }

    /// <summary>Gets the changes of one service's circuit so far, in order.</summary>
    public IReadOnlyList<TransitionRecord> Of(string service)
    {
        lock (_lock)
        {
            return _records.Where(r => r.Service == service).OrderBy(r => r.At).ToList();
        }
    }

    /// <summary>Gets the last <paramref name="count"/> changes of every circuit.</summary>
    public IReadOnlyList<TransitionRecord> Last(int count)
    {
        lock (_lock)
        {
            return _records.TakeLast(count).ToList();
        }
    }

    private sealed class Unsubscriber(Action unsubscribe) : IDisposable
    {
        public void Dispose() => unsubscribe();
    }
}
