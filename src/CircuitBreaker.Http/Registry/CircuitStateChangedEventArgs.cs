namespace CircuitBreaker.Http;

/// <summary>Describes a state change of one circuit.</summary>
public sealed class CircuitStateChangedEventArgs : EventArgs
{
    internal CircuitStateChangedEventArgs(CircuitKey key, CircuitTransition transition)
    {
        Key = key;
        PreviousState = transition.PreviousState;
        State = transition.State;
        Timestamp = transition.Timestamp;
        BreakDuration = transition.BreakDuration;
        Source = transition.Source;
    }

    /// <summary>Gets the circuit that changed.</summary>
    public CircuitKey Key { get; }

    /// <summary>Gets the state before the change.</summary>
    public CircuitState PreviousState { get; }

    /// <summary>Gets the state after the change.</summary>
    public CircuitState State { get; }

    /// <summary>Gets when the change happened, from the registry's <see cref="TimeProvider"/>.</summary>
    public DateTimeOffset Timestamp { get; }

    /// <summary>Gets how long the circuit stays open, when it opened; otherwise <see langword="null"/>.</summary>
    public TimeSpan? BreakDuration { get; }

    /// <summary>
    /// Gets who decided the change: this instance's own calls, an operator, the fleet, or the registry's eviction of a
    /// circuit that was not closed (<see cref="CircuitChangeSource.Eviction"/>). A fleet coordinator
    /// shares only <see cref="CircuitChangeSource.Local"/> changes, so that a decision it applied is not echoed back.
    /// </summary>
    public CircuitChangeSource Source { get; }
}
