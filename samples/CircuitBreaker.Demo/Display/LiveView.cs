using CircuitBreaker.Demo.Drill;
using CircuitBreaker.Demo.Scenario;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace CircuitBreaker.Demo.Display;

/// <summary>
/// The live view on a terminal (Spectre.Console): the phase, a status line per circuit, the running counts, the last
/// transitions and log entries, redrawn a few times a second; then the summary table.
/// </summary>
public sealed class LiveView(IAnsiConsole console) : IDrillView
{
    private const int TransitionsShown = 6;
    private const int LogsShown = 3;

    private readonly Lock _lock = new();
    private readonly Queue<TransitionRecord> _transitions = new();
    private readonly Queue<LogLine> _logs = new();
    private string _phase = "";
    private string _note = "";
    private int _nameWidth = 6;

    public void Starting(DrillIntro intro)
    {
        ArgumentNullException.ThrowIfNull(intro);
        _nameWidth = Math.Max(_nameWidth, intro.Services.Max(s => s.Name.Length));
        console.MarkupLine($"[bold]CircuitBreaker.Http outage drill[/]: scenario '{Markup.Escape(intro.Scenario.Name)}', {intro.Scenario.Phases.Count} phases, {Format.Seconds(intro.Scenario.Duration)}");
        foreach (var (name, address) in intro.Services)
        {
            console.MarkupLine($"  [bold]{Markup.Escape(name.PadRight(_nameWidth))}[/]  downstream {Markup.Escape(address.ToString())}");
        }

        console.MarkupLine($"  [grey]breaker[/]  {Markup.Escape(intro.Breaker)}");
        console.MarkupLine($"  [grey]traffic[/]  {Markup.Escape(intro.Traffic)}");
        foreach (var endpoint in intro.Endpoints)
        {
            console.MarkupLine($"  {Markup.Escape(endpoint)}");
        }

        console.WriteLine();
    }

    public void PhaseStarted(TimeSpan at, int number, ScenarioPhase phase, string description)
    {
        lock (_lock)
        {
            _phase = description;
            _note = "";
        }
    }

    public void Note(TimeSpan at, string text)
    {
        lock (_lock)
        {
            _note = text;
        }
    }

    public void Transition(TransitionRecord transition) => Keep(_transitions, transition, TransitionsShown);

    public void Log(LogLine line) => Keep(_logs, line, LogsShown);

    public async Task FollowAsync(Func<DrillStatus> status, Task drill)
    {
        ArgumentNullException.ThrowIfNull(status);
        ArgumentNullException.ThrowIfNull(drill);
        await console.Live(Render(status()))
            .AutoClear(false)
            .Overflow(VerticalOverflow.Ellipsis)
            .StartAsync(async context =>
            {
                while (await Task.WhenAny(drill, Task.Delay(200)) != drill)
                {
                    context.UpdateTarget(Render(status()));
                }

                context.UpdateTarget(Render(status()));
            });
    }

    public void Summary(DrillSummary summary)
    {
        console.WriteLine();
        console.Write(SummaryTable.Build(summary));
        foreach (var line in SummaryTable.CheckLines(summary, markup: true))
        {
            console.MarkupLine(line);
        }
    }

    public void Message(string text) => console.MarkupLine(Markup.Escape(text));

    private Rows Render(DrillStatus status)
    {
        string phase, note;
        TransitionRecord[] transitions;
        LogLine[] logs;
        lock (_lock)
        {
            (phase, note, transitions, logs) = (_phase, _note, _transitions.ToArray(), _logs.ToArray());
        }

        var progress = status.Duration > TimeSpan.Zero ? Math.Min(1, status.Elapsed / status.Duration) : 1;
        const int barWidth = 20;
        var done = (int)Math.Round(progress * barWidth);
        var header = new Markup(
            $"[bold]{Format.Seconds(status.Elapsed),7}[/] [blue]{new string('━', done)}[/][grey]{new string('━', barWidth - done)}[/] {Format.Seconds(status.Duration)}"
            + $"   phase {status.PhaseNumber}/{status.PhaseCount} [bold yellow]{Markup.Escape(status.PhaseName)}[/]");
        var detail = new Markup($"[grey]downstreams:[/] {Markup.Escape(phase)}{(note.Length > 0 ? $"\n[grey]{Markup.Escape(note)}[/]" : "")}");

        var circuits = new Table().Border(TableBorder.Rounded).Title("[bold]circuits[/]");
        circuits.AddColumns("service", "downstream", "circuit", "failures", "retry in");
        var counts = new Table().Border(TableBorder.Rounded).Title("[bold]requests[/]");
        counts.AddColumns("service", "sent", "2xx", "5xx", "cache", "degraded", "rejected", "failed", "reached");
        foreach (var column in counts.Columns.Skip(1))
        {
            column.RightAligned();
        }

        foreach (var s in status.Services)
        {
            var retry = s.RetryIn is { } r ? Format.Countdown(r) : s.State == Http.CircuitState.HalfOpen ? "probe due" : "";
            var colour = Format.Colour(s.State);
            circuits.AddRow(
                $"[bold]{Markup.Escape(s.Service)}[/]",
                Markup.Escape(s.Behaviour.ToString()),
                $"[{colour}]● {Format.State(s.State)}[/]",
                Format.Count(s.ConsecutiveFailures),
                retry);
            var c = s.Client;
            counts.AddRow(
                $"[bold]{Markup.Escape(s.Service)}[/]",
                Format.Count(c.Sent),
                $"[green]{c.DownstreamOk}[/]",
                $"[red]{c.DownstreamError}[/]",
                $"[blue]{c.Cache}[/]",
                $"[blue]{c.Degraded}[/]",
                $"[yellow]{c.Rejected}[/]",
                $"[red]{c.Failed}[/]",
                Format.Count(s.Server.Received));
        }

        var recent = transitions.Length == 0
            ? new Markup("[grey]no transitions yet[/]")
            : new Markup(string.Join('\n', transitions.Select(t =>
                $"[grey]{Format.Stamp(t.Elapsed)}[/]  [{Format.Colour(t.To)}]{Markup.Escape(Format.Transition(t, _nameWidth))}[/]")));
        var width = Math.Max(40, console.Profile.Width - 1);
        var logLines = logs.Select(l => (IRenderable)new Text(Truncate($"{Format.Stamp(l.Elapsed)}  {Format.Log(l)}", width), new Style(Color.Grey)));

        return new Rows(
        [
            header,
            detail,
            circuits,
            counts,
            new Panel(recent).Header("recent transitions").Border(BoxBorder.Rounded).Expand(),
            .. logs.Length == 0 ? [new Markup("[grey]no warnings logged yet[/]")] : logLines,
        ]);
    }

    /// <summary>One line per log entry: the live view has no room for wrapped lines.</summary>
    private static string Truncate(string text, int width) => text.Length <= width ? text : string.Concat(text.AsSpan(0, width - 1), "…");

    private void Keep<T>(Queue<T> queue, T item, int max)
    {
        lock (_lock)
        {
            queue.Enqueue(item);
            while (queue.Count > max)
            {
                queue.Dequeue();
            }
        }
    }
}
