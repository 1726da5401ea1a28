using System;

namespace ModelParallel
{
    /// <summary>
    /// The sizes of the mesh axes. World = dp × pp × tp; tp is innermost, so the ranks of one
    /// tensor-parallel group are neighbours.
    /// </summary>
    public readonly record struct MeshShape
    {
        /// <summary>One rank: every axis 1 (not the all-zero default a struct would otherwise get from <c>new MeshShape()</c>).</summary>
        public MeshShape() : this(1, 1, 1)
        {
        }

        /// <summary>Creates a mesh; every axis defaults to 1.</summary>
        public MeshShape(int dp = 1, int pp = 1, int tp = 1)
        {
            if (dp < 1 || pp < 1 || tp < 1)
                throw new ArgumentOutOfRangeException(nameof(tp), $"Mesh axes must be at least 1; got dp={dp}, pp={pp}, tp={tp}.");
            Dp = dp;
            Pp = pp;
            Tp = tp;
        }

        /// <summary>Data-parallel size.</summary>
        public int Dp { get; }

        /// <summary>Pipeline-parallel size.</summary>
        public int Pp { get; }

        /// <summary>Tensor-parallel size.</summary>
        public int Tp { get; }

        /// <summary>The number of ranks: dp × pp × tp.</summary>
        public int World => Dp * Pp * Tp;

        /// <summary>The size of one axis.</summary>
        public int Size(MeshAxis axis) => axis switch
        {
            MeshAxis.Data => Dp,
            MeshAxis.Pipeline => Pp,
            _ => Tp,
        };

        /// <summary>The coordinates of a world rank.</summary>
        public MeshCoordinates CoordinatesOf(int rank)
        {
            if (rank < 0 || rank >= World)
                throw new ArgumentOutOfRangeException(nameof(rank), $"Rank {rank} is outside {this}.");
            return new MeshCoordinates(rank / (Pp * Tp), rank / Tp % Pp, rank % Tp);
        }

        /// <summary>The world rank at given coordinates.</summary>
        public int RankOf(MeshCoordinates c) => (c.Dp * Pp + c.Pp) * Tp + c.Tp;

        /// <inheritdoc/>
        public override string ToString() => $"mesh dp={Dp} × pp={Pp} × tp={Tp}";
    }

    /// <summary>A rank's position on each mesh axis.</summary>
    public readonly record struct MeshCoordinates(int Dp, int Pp, int Tp)
    {
        /// <summary>The coordinate on one axis.</summary>
        public int On(MeshAxis axis) => axis switch
        {
            MeshAxis.Data => Dp,
            MeshAxis.Pipeline => Pp,
            _ => Tp,
        };

        /// <summary>These coordinates with one axis replaced.</summary>
        public MeshCoordinates With(MeshAxis axis, int value) => axis switch
        {
            MeshAxis.Data => this with { Dp = value },
            MeshAxis.Pipeline => this with { Pp = value },
            _ => this with { Tp = value },
        };
    }
}
