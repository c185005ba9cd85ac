namespace CircuitBreaker.Demo.Scenario;

/// <summary>One step of the timeline: how long it lasts and what each downstream service does meanwhile.</summary>
/// <param name="Name">A short name shown while the phase runs.</param>
/// <param name="Duration">How long the phase lasts.</param>
/// <param name="Services">The behaviour of each service; a service the phase does not name is healthy.</param>
public sealed record ScenarioPhase(string Name, TimeSpan Duration, IReadOnlyDictionary<string, ServiceBehaviour> Services)
{
    /// <summary>The behaviour of <paramref name="service"/> in this phase.</summary>
    public ServiceBehaviour BehaviourOf(string service) =>
        Services.TryGetValue(service, out var behaviour) ? behaviour : ServiceBehaviour.Healthy;

    /// <summary>Describes every service's behaviour, e.g. <c>users 503 x 80%, orders healthy</c>.</summary>
    public string Describe(IEnumerable<string> services) =>
        string.Join(", ", services.Select(s => $"{s} {BehaviourOf(s)}"));
}

/// <summary>The drill's scripted timeline: phases played one after the other, read from configuration or a file.</summary>
/// <param name="Name">The scenario's name.</param>
/// <param name="Services">The downstream services, in the order they are shown; each gets a server and a named client.</param>
/// <param name="Phases">The phases, in order.</param>
public sealed record DrillScenario(string Name, IReadOnlyList<string> Services, IReadOnlyList<ScenarioPhase> Phases)
{

    /// <summary>Gets the length of the whole timeline.</summary>
    public TimeSpan Duration => Phases.Aggregate(TimeSpan.Zero, (total, p) => total + p.Duration);

    /// <summary>The same timeline with every phase stretched or shrunk in proportion, so that it lasts <paramref name="duration"/>.</summary>
    public DrillScenario ScaledTo(TimeSpan duration)
    {
        var factor = duration / Duration;
        return this with { Phases = Phases.Select(p => p with { Duration = p.Duration * factor }).ToList() };
    }
}
