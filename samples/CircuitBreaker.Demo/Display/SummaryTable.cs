using CircuitBreaker.Demo.Drill;
using CircuitBreaker.Http;
using Spectre.Console;

namespace CircuitBreaker.Demo.Display;

/// <summary>The table printed at the end: one column per host, one row per number, and the checks below it.</summary>
public static class SummaryTable
{
    /// <summary>Builds the table.</summary>
    public static Table Build(DrillSummary summary)
    {
        ArgumentNullException.ThrowIfNull(summary);
        var hosts = summary.Hosts;
        var table = new Table().Border(TableBorder.Rounded)
            .Title($"Outage drill '{Markup.Escape(summary.Scenario)}': {Format.Seconds(summary.Elapsed)}{(summary.Interrupted ? ", interrupted" : "")}");
        table.AddColumn(new TableColumn(""));
        foreach (var host in hosts)
        {
            table.AddColumn(new TableColumn($"[bold]{Markup.Escape(host.Service)}[/]").RightAligned());
        }

        table.AddColumn(new TableColumn("[bold]total[/]").RightAligned());

        void Row(string label, Func<HostSummary, int> value, bool always = true)
        {
            if (always || hosts.Any(h => value(h) != 0))
            {
                table.AddRow([Markup.Escape(label), .. hosts.Select(h => Format.Count(value(h))), Format.Count(hosts.Sum(value))]);
            }
        }

        void Text(string label, Func<HostSummary, string> value) =>
            table.AddRow([Markup.Escape(label), .. hosts.Select(h => Markup.Escape(value(h))), ""]);

        Row("requests sent", h => h.Client.Sent);
        Row("answered by the downstream, 2xx", h => h.Client.DownstreamOk);
        Row("answered by the downstream, error status", h => h.Client.DownstreamError);
        Row("fallback: cache", h => h.Client.Cache);
        Row("fallback: alternate", h => h.Client.Alternate, always: false);
        Row("fallback: degraded", h => h.Client.Degraded);
        Row("fallback: custom", h => h.Client.Custom, always: false);
        Row("rejected (CircuitOpenException)", h => h.Client.Rejected);
        Row("failed: AttemptTimeout", h => h.Client.FailedTimeout);
        Row("failed: connection refused", h => h.Client.FailedConnection);
        Row("failed: other", h => h.Client.FailedOther, always: false);
        Row("cancelled (Ctrl+C)", h => h.Client.Cancelled, always: false);
        table.AddEmptyRow();
        Row("let through by the breaker", h => h.Client.LetThrough);
        Row("reached the downstream (its own count)", h => h.Server.Received);
        Row("  answered after the caller gave up", h => h.AnsweredTooLate, always: false);
        Row("kept off the downstream (fallback + rejected)", h => h.Client.KeptOff);
        Text("  share of requests kept off", h => h.Client.Sent == 0 ? "-" : $"{(double)h.Client.KeptOff / h.Client.Sent:0%}");
        table.AddEmptyRow();
        Row("transitions Closed -> Open", h => h.Count(CircuitState.Closed, CircuitState.Open));
        Row("transitions Open -> HalfOpen", h => h.Count(CircuitState.Open, CircuitState.HalfOpen));
        Row("transitions HalfOpen -> Open (probe failed)", h => h.Count(CircuitState.HalfOpen, CircuitState.Open));
        Row("transitions HalfOpen -> Closed", h => h.Count(CircuitState.HalfOpen, CircuitState.Closed));
        Text("circuit at the end", h => Format.State(h.FinalState));
        return table;
    }

    /// <summary>The checks, one line each, e.g. <c>ok    every request accounted for exactly once</c>.</summary>
    public static IEnumerable<string> CheckLines(DrillSummary summary, bool markup)
    {
        ArgumentNullException.ThrowIfNull(summary);
        foreach (var check in summary.Checks)
        {
            var mark = check.Passed ? (markup ? "[green]ok    [/]" : "ok    ") : (markup ? "[red]FAILED[/]" : "FAILED");
            var name = markup ? Markup.Escape(check.Name) : check.Name;
            var detail = check.Passed ? "" : ": " + (markup ? Markup.Escape(check.Detail) : check.Detail);
            yield return $"{mark} {name}{detail}";
        }
    }
}
