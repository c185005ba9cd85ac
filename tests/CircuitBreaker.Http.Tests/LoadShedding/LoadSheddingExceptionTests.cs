namespace CircuitBreaker.Http.Tests.LoadShedding;

public sealed class LoadSheddingExceptionTests
{
    [Fact]
    public void Reason_OfAnExceptionBuiltWithoutOne_IsUnknown_NotALimitThatShedNothing()
    {
        // The standard constructors exist for test doubles and handlers of one's own; their default must not name a limit.
        Assert.Equal(LoadSheddingReason.Unknown, new LoadSheddingException().Reason);
        Assert.Equal(LoadSheddingReason.Unknown, new LoadSheddingException("shed").Reason);
        Assert.Equal(LoadSheddingReason.Unknown, default(LoadSheddingReason));
    }
}
