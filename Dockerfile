# hookd's container image: a static pure-Go binary FROM scratch, run as a
# non-root user, with its data directory on a volume. See docs/PACKAGING.md.
#
#   docker build -t hookd --build-arg VERSION=v1.2.0 --build-arg REVISION=$(git rev-parse HEAD) .
#   docker run -p 8080:8080 -v hookd-data:/data hookd

# The toolchain go.mod asks for.
FROM golang:1.26.8 AS build
WORKDIR /src
# Modules first, so that a change of source reuses the download layer.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG REVISION=
ARG BUILD_TIME=
ARG SOURCE_DATE_EPOCH=
# The flags are in deploy/build.sh (CGO_ENABLED=0, -trimpath, the version
# ldflags), which the test of this file runs too.
RUN VERSION="$VERSION" REVISION="$REVISION" BUILD_TIME="$BUILD_TIME" SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" \
	sh deploy/build.sh /out/hookd \
	&& /out/hookd --version
# What scratch lacks: a data directory for the user hookd runs as (a new
# named volume takes its owner and mode), a /tmp, and a passwd entry
# naming that user.
RUN mkdir -p /rootfs/data /rootfs/tmp /rootfs/etc \
	&& chmod 0700 /rootfs/data && chmod 1777 /rootfs/tmp \
	&& echo 'hookd:x:65532:65532:hookd:/data:/sbin/nologin' > /rootfs/etc/passwd \
	&& echo 'hookd:x:65532:' > /rootfs/etc/group

FROM scratch
COPY --from=build /rootfs/etc /etc
COPY --from=build /rootfs/tmp /tmp
COPY --from=build --chown=65532:65532 /rootfs/data /data
# CA certificates for HTTPS destinations, OAuth token endpoints and JWKS.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /out/hookd /hookd
USER 65532:65532
ENV HOOKD_DATA=/data \
	HOOKD_LISTEN=:8080
VOLUME /data
EXPOSE 8080
# /healthz: the process is up. A balancer in front of replicas asks
# /readyz instead (docs/DEPLOYMENT.md).
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
	CMD ["/hookd", "healthcheck", "--timeout", "4s"]
ENTRYPOINT ["/hookd"]
CMD ["serve"]
