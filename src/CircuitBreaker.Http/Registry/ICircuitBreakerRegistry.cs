namespace CircuitBreaker.Http;

/// <summary>
/// The single owner of every circuit of the application (registered as a singleton): lists circuits,
/// lets an operator isolate and reset them, and reports state changes.
/// </summary>
public interface ICircuitBreakerRegistry
{
    /// <summary>
    /// Occurs after a circuit changed state. Handlers run outside the circuit's lock, on any thread (often the
    /// thread of the request whose outcome moved the circuit, or a timer's), so keep them short and thread-safe;
    /// an exception they throw is logged and swallowed. The changes of one circuit are told one at a time, in the
    /// order they happened: a change made while another thread is still telling an earlier one is told by that
    /// thread, after it, so <see cref="Isolate"/> or <see cref="Reset"/> may return before its event is raised.
    /// </summary>
    event EventHandler<CircuitStateChangedEventArgs>? StateChanged;

    /// <summary>Lists every circuit currently held, with its state and counters.</summary>
    /// <returns>A snapshot of the circuits; later changes do not alter it.</returns>
    IReadOnlyList<CircuitInfo> GetCircuits();

    /// <summary>Opens a circuit by hand until <see cref="Reset"/> is called, creating it if it does not exist yet.</summary>
    /// <param name="key">The circuit; its authority must be an absolute <c>scheme://host:port</c>.</param>
    void Isolate(CircuitKey key);

    /// <summary>Closes a circuit by hand and forgets its failures, its break growth and any slow start under way.</summary>
    /// <param name="key">The circuit.</param>
    /// <returns><see langword="true"/> if the circuit exists.</returns>
    bool Reset(CircuitKey key);
}
