using CircuitBreaker.Demo.Drill;
using CircuitBreaker.Demo.Scenario;

namespace CircuitBreaker.Demo.Display;

/// <summary>What the drill shows before it starts.</summary>
/// <param name="Scenario">The timeline.</param>
/// <param name="Services">Each service's name and address.</param>
/// <param name="Breaker">The breaker's options, in a few words.</param>
/// <param name="Traffic">The load, in a few words.</param>
/// <param name="Endpoints">The app's own URLs (<c>/health</c>, <c>/metrics</c>), if worth printing.</param>
public sealed record DrillIntro(DrillScenario Scenario, IReadOnlyList<(string Name, Uri Address)> Services, string Breaker, string Traffic, IReadOnlyList<string> Endpoints);

/// <summary>The console: a live view on a terminal, plain lines otherwise. Its methods may be called from any thread.</summary>
public interface IDrillView
{
    /// <summary>Shows what is about to run.</summary>
    void Starting(DrillIntro intro);

    /// <summary>A phase of the timeline began.</summary>
    void PhaseStarted(TimeSpan at, int number, ScenarioPhase phase, string description);

    /// <summary>Something the drill does that is not a phase, e.g. waiting for circuits to close.</summary>
    void Note(TimeSpan at, string text);

    /// <summary>A circuit changed state.</summary>
    void Transition(TransitionRecord transition);

    /// <summary>The app logged a warning or an error.</summary>
    void Log(LogLine line);

    /// <summary>Shows the drill's progress until <paramref name="drill"/> completes.</summary>
    Task FollowAsync(Func<DrillStatus> status, Task drill);

    /// <summary>Shows the summary table and the checks.</summary>
    void Summary(DrillSummary summary);

    /// <summary>Shows a line of text after the drill.</summary>
    void Message(string text);
}
