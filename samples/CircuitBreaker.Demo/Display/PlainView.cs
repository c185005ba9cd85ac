using CircuitBreaker.Demo.Drill;
using CircuitBreaker.Demo.Scenario;
using Spectre.Console;

namespace CircuitBreaker.Demo.Display;

/// <summary>
/// Plain lines, for redirected output and <c>--no-color</c>: each phase, transition and log entry as it happens,
/// a status line per service every <c>Drill:StatusInterval</c>, and the summary table without colours.
/// </summary>
public sealed class PlainView(TextWriter output, TimeSpan statusInterval) : IDrillView
{
    private readonly TextWriter _output = TextWriter.Synchronized(output);
    private int _nameWidth = 6;

    public void Starting(DrillIntro intro)
    {
        ArgumentNullException.ThrowIfNull(intro);
        _nameWidth = Math.Max(_nameWidth, intro.Services.Max(s => s.Name.Length));
        Line($"CircuitBreaker.Http outage drill: scenario '{intro.Scenario.Name}', {intro.Scenario.Phases.Count} phases, {Format.Seconds(intro.Scenario.Duration)}");
        foreach (var (name, address) in intro.Services)
        {
            Line($"  {name.PadRight(_nameWidth)}  downstream {address}");
        }

        Line($"  breaker  {intro.Breaker}");
        Line($"  traffic  {intro.Traffic}");
        foreach (var endpoint in intro.Endpoints)
        {
            Line($"  {endpoint}");
        }

        Line("");
    }

    public void PhaseStarted(TimeSpan at, int number, ScenarioPhase phase, string description) =>
        Line($"{Format.Stamp(at)}  phase {number}: {phase?.Name} ({description})");

    public void Note(TimeSpan at, string text) => Line($"{Format.Stamp(at)}  {text}");

    public void Transition(TransitionRecord transition) =>
        Line($"{Format.Stamp(transition.Elapsed)}  circuit {Format.Transition(transition, _nameWidth)}");

    public void Log(LogLine line) => Line($"{Format.Stamp(line.Elapsed)}  log     {Format.Log(line)}");

    public async Task FollowAsync(Func<DrillStatus> status, Task drill)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(drill);
        while (await Task.WhenAny(drill, Task.Delay(statusInterval)) != drill)
        {
            var now = status();
            foreach (var s in now.Services)
            {
                var c = s.Client;
                Line($"{Format.Stamp(now.Elapsed)}  status  {s.Service.PadRight(_nameWidth)}  {Format.Circuit(s)}; "
                    + $"sent {c.Sent}: 2xx {c.DownstreamOk}, 5xx {c.DownstreamError}, cache {c.Cache}, degraded {c.Degraded}, rejected {c.Rejected}, failed {c.Failed}");
            }
        }
    }

    public void Summary(DrillSummary summary)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.No,
            ColorSystem = ColorSystemSupport.NoColors,
            Interactive = InteractionSupport.No,
            Out = new AnsiConsoleOutput(_output),
        });
        console.Profile.Width = 100;
        Line("");
        console.Write(SummaryTable.Build(summary));
        foreach (var line in SummaryTable.CheckLines(summary, markup: false))
        {
            Line(line);
        }
    }

    public void Message(string text) => Line(text);

    private void Line(string text) => _output.WriteLine(text);
}
