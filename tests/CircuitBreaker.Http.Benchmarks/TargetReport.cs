using System.Globalization;
using BenchmarkDotNet.Engines;
using BenchmarkDotNet.Reports;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>
/// After a run, prints issue 6's targets as ratios computed from this run's means and allocations, each marked
/// met or missed. A target whose benchmarks were filtered out is left out.
/// </summary>
internal static class TargetReport
{
    public static void Print(IEnumerable<Summary> summaries)
    {
        var reports = summaries.SelectMany(s => s.Reports)
            .Where(r => r.Success && r.ResultStatistics is not null)
            .ToList();

        Result? Find(string type, string method, int? callers = null)
        {
            var report = reports.FirstOrDefault(r =>
                r.BenchmarkCase.Descriptor.Type.Name == type
                && r.BenchmarkCase.Descriptor.WorkloadMethod.Name == method
                && (callers is null || Equals(r.BenchmarkCase.Parameters["Callers"], callers)));
            // Bytes the MemoryDiagnoser did not measure stay null: an allocation target is shown, never assumed.
            return report is null ? null : new(report.ResultStatistics!.Mean, report.GcStats.GetBytesAllocatedPerOperation(report.BenchmarkCase));
        }

        var rows = new List<string>();
        void Row(string target, string measured, double value, double limit, bool reference = false)
        {
            var verdict = reference ? "(reference)" : value <= limit ? "**met**" : "**missed**";
            rows.Add($"| {target} | {measured} | {F(value)} | ≤ {F(limit)} | {verdict} |");
        }

        if (Find("ClosedPathBenchmarks", "Bare") is { } bare
            && Find("ClosedPathBenchmarks", "CircuitBreakerClosed") is { } closed
            && Find("ClosedPathBenchmarks", "PollyClosed") is { } pollyClosed)
        {
            Row(
                "Closed: overhead over bare ≤ 1/10 of Polly's",
                $"({Ns(closed.Mean)} − {Ns(bare.Mean)}) / ({Ns(pollyClosed.Mean)} − {Ns(bare.Mean)})",
                (closed.Mean - bare.Mean) / (pollyClosed.Mean - bare.Mean),
                0.10);
            var extra = closed.Bytes - bare.Bytes;
            rows.Add(
                $"| Closed: allocates nothing beyond the bare client | {B(closed.Bytes)} − {B(bare.Bytes)} (Polly: {Signed(pollyClosed.Bytes - bare.Bytes)}) | " +
                $"{Signed(extra)} | 0 B | {ZeroVerdict(extra)} |");
        }

        if (Find("ClosedPathBenchmarks", "Bare") is { } bare2 && Find("ClosedPathBenchmarks", "PollyClosedWithTimeout") is { } pollyTimeout)
        {
            rows.Add($"| (reference) Polly with its timeout strategy: bytes beyond the bare client | {B(pollyTimeout.Bytes)} − {B(bare2.Bytes)} | {Signed(pollyTimeout.Bytes - bare2.Bytes)} | | (reference) |");
        }

        if (Find("AsyncClosedPathBenchmarks", "BareAsync") is { } bareAsync
            && Find("AsyncClosedPathBenchmarks", "CircuitBreakerClosedAsync") is { } closedAsync
            && Find("AsyncClosedPathBenchmarks", "PollyClosedAsync") is { } pollyAsync)
        {
            Row(
                "(reference) Closed, asynchronous stub: overhead over bare vs Polly's",
                $"({Ns(closedAsync.Mean)} − {Ns(bareAsync.Mean)}) / ({Ns(pollyAsync.Mean)} − {Ns(bareAsync.Mean)})",
                (closedAsync.Mean - bareAsync.Mean) / (pollyAsync.Mean - bareAsync.Mean),
                0.10,
                reference: true);
            rows.Add(
                $"| (reference) Closed, asynchronous stub: bytes beyond the bare client | {B(closedAsync.Bytes)} − {B(bareAsync.Bytes)} (Polly: {Signed(pollyAsync.Bytes - bareAsync.Bytes)}) | " +
                $"{Signed(closedAsync.Bytes - bareAsync.Bytes)} | | (reference) |");
        }

        if (Find("OpenPathBenchmarks", "PollyOpenThrow") is { } pollyOpen)
        {
            if (Find("OpenPathBenchmarks", "CircuitBreakerOpenDegraded") is { } degraded)
            {
                Row("Open + degraded ≤ 1/20 of Polly's rejection", $"{Ns(degraded.Mean)} / {Ns(pollyOpen.Mean)}", degraded.Mean / pollyOpen.Mean, 0.05);
            }

            if (Find("OpenPathBenchmarks", "CircuitBreakerOpenCache") is { } cache)
            {
                Row("Open + cache ≤ 1/20 of Polly's rejection", $"{Ns(cache.Mean)} / {Ns(pollyOpen.Mean)}", cache.Mean / pollyOpen.Mean, 0.05);
            }

            if (Find("OpenPathBenchmarks", "CircuitBreakerOpenDegraded") is { } degradedRef && Find("OpenPathBenchmarks", "PollyOpenFallback") is { } pollyFallback)
            {
                Row(
                    "(reference) Open + degraded vs Polly's open circuit answered by its own fallback strategy",
                    $"{Ns(degradedRef.Mean)} / {Ns(pollyFallback.Mean)}",
                    degradedRef.Mean / pollyFallback.Mean,
                    1.0,
                    reference: true);
            }

            if (Find("OpenPathBenchmarks", "CircuitBreakerOpenThrow") is { } open)
            {
                Row("Open + throw no slower than Polly's rejection", $"{Ns(open.Mean)} / {Ns(pollyOpen.Mean)}", open.Mean / pollyOpen.Mean, 1.0);
            }
        }

        if (Find("ManyHostsBenchmarks", "CircuitBreakerSingleHost") is { } single
            && Find("ManyHostsBenchmarks", "CircuitBreakerManyHosts") is { } many)
        {
            var bareRatio = Find("ManyHostsBenchmarks", "BareSingleHost") is { } bareSingle && Find("ManyHostsBenchmarks", "BareManyHosts") is { } bareMany
                ? $" (bare client: {F(bareMany.Mean / bareSingle.Mean)})"
                : string.Empty;
            Row($"{ManyHostsBenchmarks.Hosts:N0} hosts ≤ 1.5 × one host", $"{Ns(many.Mean)} / {Ns(single.Mean)}{bareRatio}", many.Mean / single.Mean, 1.5);
        }

        if (Find("FleetBenchmarks", "Bare") is { } fleetBare
            && Find("FleetBenchmarks", "CircuitBreakerClosed") is { } local
            && Find("FleetBenchmarks", "CircuitBreakerClosedFleet") is { } fleet)
        {
            // Issue 9: fleet mode adds nothing to the request path. Bytes are exact; times of two equal paths differ by noise.
            var extra = fleet.Bytes - local.Bytes;
            rows.Add(
                $"| Fleet mode (issue 9): closed path allocates nothing more with fleet mode on | {B(fleet.Bytes)} − {B(local.Bytes)} | " +
                $"{Signed(extra)} | 0 B | {ZeroVerdict(extra)} |");
            Row(
                "(reference) Fleet mode: overhead over bare, on vs off",
                $"({Ns(fleet.Mean)} − {Ns(fleetBare.Mean)}) / ({Ns(local.Mean)} − {Ns(fleetBare.Mean)})",
                (fleet.Mean - fleetBare.Mean) / (local.Mean - fleetBare.Mean),
                1.0,
                reference: true);
        }

        var cores = Environment.ProcessorCount;
        if (cores > 1)
        {
            foreach (var method in new[] { "CircuitBreaker", "Bare", "Polly" })
            {
                if (Find("ContentionBenchmarks", method, 1) is { } one && Find("ContentionBenchmarks", method, cores) is { } n)
                {
                    var label = method == "CircuitBreaker" ? "Contention" : $"{method}, for reference";
                    Row(
                        $"{label}: time per request per core, {cores} callers vs 1",
                        $"{cores} × {Ns(n.Mean)} / {Ns(one.Mean)}",
                        cores * n.Mean / one.Mean,
                        1.5,
                        reference: method != "CircuitBreaker");
                }
            }
        }

        if (rows.Count == 0)
        {
            return;
        }

        Console.WriteLine();
        Console.WriteLine("// * Issue 6 targets (ratios from this run) *");
        if (reports.Any(r => r.BenchmarkCase.Job.Run.RunStrategy == RunStrategy.ColdStart))
        {
            Console.WriteLine("// A cold-start run (such as --job dry) times single first calls: these ratios mean nothing.");
        }

        Console.WriteLine("| target | computed as | ratio | target | |");
        Console.WriteLine("|---|---|---:|---:|---|");
        rows.ForEach(Console.WriteLine);
    }

    private static string B(long? bytes) => bytes is { } b ? b.ToString("0", CultureInfo.InvariantCulture) + " B" : "? B";

    private static string Signed(long? bytes) => bytes is { } b ? b.ToString("+0;-0;0", CultureInfo.InvariantCulture) + " B" : "not measured";

    private static string ZeroVerdict(long? extra) => extra is { } e ? (e <= 0 ? "**met**" : "**missed**") : "**not measured**";

    private static string F(double value) => value.ToString("0.000", CultureInfo.InvariantCulture);

    private static string Ns(double nanoseconds) => nanoseconds.ToString("#,0.0", CultureInfo.InvariantCulture) + " ns";

    private sealed record Result(double Mean, long? Bytes);
}
