using System.Globalization;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace CircuitBreaker.Http.Benchmarks;

/// <summary>Adds the cost over each group's baseline, in time and in bytes, to the default columns.</summary>
public sealed class BenchmarkConfig : ManualConfig
{
    public BenchmarkConfig()
    {
        AddColumn(new DeltaColumn(allocated: false), new DeltaColumn(allocated: true));
        SummaryStyle = SummaryStyle.Default.WithRatioStyle(RatioStyle.Value);
    }
}

/// <summary>
/// <c>Δ Mean</c>: the benchmark's mean minus its baseline's, in nanoseconds. <c>Δ Alloc</c>: its bytes allocated per
/// operation minus the baseline's. For the closed path this is the breaker's overhead over a bare client.
/// </summary>
internal sealed class DeltaColumn(bool allocated) : IColumn
{
    public string Id => allocated ? "DeltaAllocated" : "DeltaMean";

    public string ColumnName => allocated ? "Δ Alloc" : "Δ Mean";

    public bool AlwaysShow => true;

    public ColumnCategory Category => ColumnCategory.Custom;

    public int PriorityInCategory => allocated ? 1 : 0;

    public bool IsNumeric => true;

    public UnitType UnitType => UnitType.Dimensionless;

    public string Legend => allocated
        ? "Bytes allocated per operation minus the baseline's"
        : "Mean minus the baseline's mean, in nanoseconds";

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase) => GetValue(summary, benchmarkCase, summary.Style);

    public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
    {
        var baseline = summary.GetBaseline(summary.GetLogicalGroupKey(benchmarkCase));
        if (baseline is null || summary[benchmarkCase] is not { } report || summary[baseline] is not { } baseReport)
        {
            return "-";
        }

        if (allocated)
        {
            var bytes = report.GcStats.GetBytesAllocatedPerOperation(benchmarkCase);
            var baseBytes = baseReport.GcStats.GetBytesAllocatedPerOperation(baseline);
            return bytes is { } b && baseBytes is { } bb ? (b - bb).ToString("+#,0 B;-#,0 B;0 B", CultureInfo.InvariantCulture) : "?";
        }

        return report.ResultStatistics is { } stats && baseReport.ResultStatistics is { } baseStats
            ? (stats.Mean - baseStats.Mean).ToString("+#,0.0 ns;-#,0.0 ns;0 ns", CultureInfo.InvariantCulture)
            : "?";
    }

    public bool IsAvailable(Summary summary) => true;

    public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
}
