namespace CircuitBreaker.Http;

/// <summary>
/// Applies decisions taken for a whole fleet of instances (by a coordinator such as CircuitBreaker.Http.Redis)
/// to this instance's circuits. The registry implements it; a coordination package registers it with
/// <c>services.AddCircuitBreakerFleetControl()</c> and resolves it from the container. Nothing here runs on the
/// request path: a coordinator calls these methods when messages arrive, and calls keep deciding locally.
/// </summary>
public interface ICircuitFleetControl
{
    /// <summary>
    /// Opens a circuit because the fleet decided so (creating it if this instance has not called the host yet),
    /// and holds its half-open probe for the fleet's prober: after <paramref name="breakDuration"/> the circuit
    /// turns calls away until <see cref="GrantProbe"/> or <see cref="Close"/> is called for it, or
    /// <paramref name="probeWait"/> has passed, after which it probes by itself. An isolated circuit is left alone.
    /// </summary>
    /// <param name="key">The circuit; its authority must be an absolute <c>scheme://host:port</c>.</param>
    /// <param name="breakDuration">
    /// How long the circuit stays open: no longer than its own <c>MaxBreakDuration</c> (or a longer <c>BreakDuration</c>)
    /// allows, and a negative duration is taken as zero.
    /// </param>
    /// <param name="probeWait">
    /// How long after the break to wait for the fleet's verdict before probing alone: at most a year (longer, such as
    /// <see cref="TimeSpan.MaxValue"/>, is taken as a year), and a negative wait is taken as zero.
    /// </param>
    void Open(CircuitKey key, TimeSpan breakDuration, TimeSpan probeWait);

    /// <summary>Lets this instance send the fleet's probe of a circuit held by <see cref="Open"/>.</summary>
    /// <param name="key">The circuit.</param>
    /// <returns><see langword="true"/> if the circuit exists and was held.</returns>
    bool GrantProbe(CircuitKey key);

    /// <summary>
    /// Closes a circuit held by <see cref="Open"/> because the fleet's probe succeeded on another instance.
    /// A circuit this instance opened on its own is left to probe for itself.
    /// </summary>
    /// <param name="key">The circuit.</param>
    /// <returns><see langword="true"/> if the circuit was held and is now closed.</returns>
    bool Close(CircuitKey key);

    /// <summary>
    /// Forgets every fleet hold, for when the coordinator loses its connection: each circuit probes by itself
    /// again after its break.
    /// </summary>
    void ReleaseAll();
}
