namespace CircuitBreaker.Http;

/// <summary>
/// Successes and failures over the last <c>SamplingDuration</c>, kept in a fixed ring of buckets so that
/// memory per circuit is constant however many calls are made. Not thread-safe: the owner holds its lock.
/// </summary>
internal sealed class RollingWindow
{
    private const int BucketCount = 10;

    private readonly long _bucketLength;
    private readonly long[] _bucketIds = new long[BucketCount];
    private readonly int[] _successes = new int[BucketCount];
    private readonly int[] _failures = new int[BucketCount];

    public RollingWindow(TimeSpan samplingDuration, long timestampFrequency)
    {
        SamplingDuration = samplingDuration;
        var windowLength = (long)(samplingDuration.TotalSeconds * timestampFrequency);
        _bucketLength = Math.Max(1, windowLength / BucketCount);
        Array.Fill(_bucketIds, long.MinValue);
    }

    public TimeSpan SamplingDuration { get; }

    public void Record(long timestamp, bool failed)
    {
        var id = timestamp / _bucketLength;
        var slot = (int)(id % BucketCount);
        if (_bucketIds[slot] != id)
        {
            _bucketIds[slot] = id;
            _successes[slot] = 0;
            _failures[slot] = 0;
        }

        if (failed)
        {
            _failures[slot]++;
        }
        else
        {
            _successes[slot]++;
        }
    }

    public (long Total, long Failures) Read(long timestamp)
    {
        var current = timestamp / _bucketLength;

        // Summed in long: the longest SamplingDuration, a day, holds more than int.MaxValue calls from about 25,000 a
        // second, and an int total would turn negative, which would silence the ratio trigger and report a ratio
        // outside [0, 1]. (A bucket holds a tenth of the window: an int suffices there up to ten times that rate.)
        long total = 0, failures = 0;
        for (var slot = 0; slot < BucketCount; slot++)
        {
            if (_bucketIds[slot] > current - BucketCount)
            {
                total += (long)_successes[slot] + _failures[slot];
                failures += _failures[slot];
            }
        }

        return (total, failures);
    }

    public void Clear() => Array.Fill(_bucketIds, long.MinValue);

    /// <summary>
    /// A window of another length that holds this one's samples, so that a reload of <c>SamplingDuration</c> keeps the
    /// evidence gathered so far. Each bucket's counts move to the new bucket holding the bucket's latest instant (never
    /// later than <paramref name="timestamp"/>, now); those older than the new window are dropped.
    /// </summary>
    public RollingWindow Resized(TimeSpan samplingDuration, long timestampFrequency, long timestamp)
    {
        var resized = new RollingWindow(samplingDuration, timestampFrequency);
        var current = timestamp / _bucketLength;
        for (var slot = 0; slot < BucketCount; slot++)
        {
            if (_bucketIds[slot] > current - BucketCount)
            {
                resized.Add(Math.Min(((_bucketIds[slot] + 1) * _bucketLength) - 1, timestamp), timestamp, _successes[slot], _failures[slot]);
            }
        }

        return resized;
    }

    private void Add(long at, long now, int successes, int failures)
    {
        var id = at / _bucketLength;
        if (id <= (now / _bucketLength) - BucketCount)
        {
            return;
        }

        var slot = (int)(id % BucketCount);
        if (_bucketIds[slot] != id)
        {
            _bucketIds[slot] = id;
            _successes[slot] = 0;
            _failures[slot] = 0;
        }

        _successes[slot] += successes;
        _failures[slot] += failures;
    }
}
