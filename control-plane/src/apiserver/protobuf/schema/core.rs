//! Protobuf schema of core/v1 (`k8s.io/api/core/v1/generated.proto`): the Pod tree (containers, probes,
//! volumes and every volume source, affinity, security contexts, resources),
//! Namespace, ConfigMap, Secret, ServiceAccount, Service, Endpoints, Node, Event, Binding.
//!
//! Field numbers from the generated.proto files; JSON names, inlining and
//! zero-value handling from the Go types. Data only.

use super::meta::{CONDITION, LABEL_SELECTOR, OBJECT_META};
use super::{Msg, Ty, f, keep, msg, rep};

pub static AFFINITY: Msg = msg(
    "k8s.io.api.core.v1.Affinity",
    &[
        f(1, "nodeAffinity", Ty::Msg(&NODE_AFFINITY)),
        f(2, "podAffinity", Ty::Msg(&POD_AFFINITY)),
        f(3, "podAntiAffinity", Ty::Msg(&POD_ANTI_AFFINITY)),
    ],
);

pub static APP_ARMOR_PROFILE: Msg = msg(
    "k8s.io.api.core.v1.AppArmorProfile",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "localhostProfile", Ty::Str),
    ],
);

pub static ATTACHED_VOLUME: Msg = msg(
    "k8s.io.api.core.v1.AttachedVolume",
    &[keep(1, "name", Ty::Str), keep(2, "devicePath", Ty::Str)],
);

pub static AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.AWSElasticBlockStoreVolumeSource",
    &[
        keep(1, "volumeID", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "partition", Ty::I32),
        f(4, "readOnly", Ty::Bool),
    ],
);

pub static AZURE_DISK_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.AzureDiskVolumeSource",
    &[
        keep(1, "diskName", Ty::Str),
        keep(2, "diskURI", Ty::Str),
        keep(3, "cachingMode", Ty::Str),
        keep(4, "fsType", Ty::Str),
        keep(5, "readOnly", Ty::Bool),
        keep(6, "kind", Ty::Str),
    ],
);

pub static AZURE_FILE_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.AzureFileVolumeSource",
    &[
        keep(1, "secretName", Ty::Str),
        keep(2, "shareName", Ty::Str),
        f(3, "readOnly", Ty::Bool),
    ],
);

pub static BINDING: Msg = msg(
    "k8s.io.api.core.v1.Binding",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "target", Ty::Msg(&OBJECT_REFERENCE)),
    ],
);

pub static CAPABILITIES: Msg = msg(
    "k8s.io.api.core.v1.Capabilities",
    &[rep(1, "add", Ty::Str), rep(2, "drop", Ty::Str)],
);

pub static CEPH_FS_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.CephFSVolumeSource",
    &[
        rep(1, "monitors", Ty::Str),
        f(2, "path", Ty::Str),
        f(3, "user", Ty::Str),
        f(4, "secretFile", Ty::Str),
        f(5, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(6, "readOnly", Ty::Bool),
    ],
);

pub static CINDER_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.CinderVolumeSource",
    &[
        keep(1, "volumeID", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "readOnly", Ty::Bool),
        f(4, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
    ],
);

pub static CLIENT_IP_CONFIG: Msg = msg(
    "k8s.io.api.core.v1.ClientIPConfig",
    &[keep(1, "timeoutSeconds", Ty::I32)],
);

pub static CLUSTER_TRUST_BUNDLE_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.ClusterTrustBundleProjection",
    &[
        keep(1, "name", Ty::Str),
        keep(2, "signerName", Ty::Str),
        f(3, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        keep(4, "path", Ty::Str),
        keep(5, "optional", Ty::Bool),
    ],
);

pub static CONFIG_MAP: Msg = msg(
    "k8s.io.api.core.v1.ConfigMap",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::MapStr),
        f(3, "binaryData", Ty::MapBytes),
        keep(4, "immutable", Ty::Bool),
    ],
);

pub static CONFIG_MAP_ENV_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ConfigMapEnvSource",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "optional", Ty::Bool),
    ],
);

pub static CONFIG_MAP_KEY_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.ConfigMapKeySelector",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "key", Ty::Str),
        keep(3, "optional", Ty::Bool),
    ],
);

pub static CONFIG_MAP_NODE_CONFIG_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ConfigMapNodeConfigSource",
    &[
        keep(1, "namespace", Ty::Str),
        keep(2, "name", Ty::Str),
        f(3, "uid", Ty::Str),
        f(4, "resourceVersion", Ty::Str),
        keep(5, "kubeletConfigKey", Ty::Str),
    ],
);

pub static CONFIG_MAP_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.ConfigMapProjection",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        rep(2, "items", Ty::Msg(&KEY_TO_PATH)),
        keep(4, "optional", Ty::Bool),
    ],
);

pub static CONFIG_MAP_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ConfigMapVolumeSource",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        rep(2, "items", Ty::Msg(&KEY_TO_PATH)),
        keep(3, "defaultMode", Ty::I32),
        keep(4, "optional", Ty::Bool),
    ],
);

pub static CONTAINER: Msg = msg(
    "k8s.io.api.core.v1.Container",
    &[
        keep(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        f(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        rep(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        rep(9, "volumeMounts", Ty::Msg(&VOLUME_MOUNT)),
        f(10, "livenessProbe", Ty::Msg(&PROBE)),
        f(11, "readinessProbe", Ty::Msg(&PROBE)),
        f(12, "lifecycle", Ty::Msg(&LIFECYCLE)),
        f(13, "terminationMessagePath", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(15, "securityContext", Ty::Msg(&SECURITY_CONTEXT)),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
        rep(19, "envFrom", Ty::Msg(&ENV_FROM_SOURCE)),
        f(20, "terminationMessagePolicy", Ty::Str),
        rep(21, "volumeDevices", Ty::Msg(&VOLUME_DEVICE)),
        f(22, "startupProbe", Ty::Msg(&PROBE)),
        rep(23, "resizePolicy", Ty::Msg(&CONTAINER_RESIZE_POLICY)),
        keep(24, "restartPolicy", Ty::Str),
        rep(25, "restartPolicyRules", Ty::Msg(&CONTAINER_RESTART_RULE)),
    ],
);

pub static CONTAINER_EXTENDED_RESOURCE_REQUEST: Msg = msg(
    "k8s.io.api.core.v1.ContainerExtendedResourceRequest",
    &[
        keep(1, "containerName", Ty::Str),
        keep(2, "resourceName", Ty::Str),
        keep(3, "requestName", Ty::Str),
    ],
);

pub static CONTAINER_IMAGE: Msg = msg(
    "k8s.io.api.core.v1.ContainerImage",
    &[rep(1, "names", Ty::Str), f(2, "sizeBytes", Ty::I64)],
);

pub static CONTAINER_PORT: Msg = msg(
    "k8s.io.api.core.v1.ContainerPort",
    &[
        f(1, "name", Ty::Str),
        f(2, "hostPort", Ty::I32),
        keep(3, "containerPort", Ty::I32),
        f(4, "protocol", Ty::Str),
        f(5, "hostIP", Ty::Str),
    ],
);

pub static CONTAINER_RESIZE_POLICY: Msg = msg(
    "k8s.io.api.core.v1.ContainerResizePolicy",
    &[
        keep(1, "resourceName", Ty::Str),
        keep(2, "restartPolicy", Ty::Str),
    ],
);

pub static CONTAINER_RESTART_RULE: Msg = msg(
    "k8s.io.api.core.v1.ContainerRestartRule",
    &[
        keep(1, "action", Ty::Str),
        f(
            2,
            "exitCodes",
            Ty::Msg(&CONTAINER_RESTART_RULE_ON_EXIT_CODES),
        ),
    ],
);

pub static CONTAINER_RESTART_RULE_ON_EXIT_CODES: Msg = msg(
    "k8s.io.api.core.v1.ContainerRestartRuleOnExitCodes",
    &[keep(1, "operator", Ty::Str), rep(2, "values", Ty::I32)],
);

pub static CONTAINER_STATE: Msg = msg(
    "k8s.io.api.core.v1.ContainerState",
    &[
        f(1, "waiting", Ty::Msg(&CONTAINER_STATE_WAITING)),
        f(2, "running", Ty::Msg(&CONTAINER_STATE_RUNNING)),
        f(3, "terminated", Ty::Msg(&CONTAINER_STATE_TERMINATED)),
    ],
);

pub static CONTAINER_STATE_RUNNING: Msg = msg(
    "k8s.io.api.core.v1.ContainerStateRunning",
    &[f(1, "startedAt", Ty::Time)],
);

pub static CONTAINER_STATE_TERMINATED: Msg = msg(
    "k8s.io.api.core.v1.ContainerStateTerminated",
    &[
        keep(1, "exitCode", Ty::I32),
        f(2, "signal", Ty::I32),
        f(3, "reason", Ty::Str),
        f(4, "message", Ty::Str),
        f(5, "startedAt", Ty::Time),
        f(6, "finishedAt", Ty::Time),
        f(7, "containerID", Ty::Str),
    ],
);

pub static CONTAINER_STATE_WAITING: Msg = msg(
    "k8s.io.api.core.v1.ContainerStateWaiting",
    &[f(1, "reason", Ty::Str), f(2, "message", Ty::Str)],
);

pub static CONTAINER_STATUS: Msg = msg(
    "k8s.io.api.core.v1.ContainerStatus",
    &[
        keep(1, "name", Ty::Str),
        f(2, "state", Ty::Msg(&CONTAINER_STATE)),
        f(3, "lastState", Ty::Msg(&CONTAINER_STATE)),
        keep(4, "ready", Ty::Bool),
        keep(5, "restartCount", Ty::I32),
        keep(6, "image", Ty::Str),
        keep(7, "imageID", Ty::Str),
        f(8, "containerID", Ty::Str),
        keep(9, "started", Ty::Bool),
        f(10, "allocatedResources", Ty::MapQuantity),
        f(11, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        rep(12, "volumeMounts", Ty::Msg(&VOLUME_MOUNT_STATUS)),
        f(13, "user", Ty::Msg(&CONTAINER_USER)),
        rep(14, "allocatedResourcesStatus", Ty::Msg(&RESOURCE_STATUS)),
        keep(15, "stopSignal", Ty::Str),
    ],
);

pub static CONTAINER_USER: Msg = msg(
    "k8s.io.api.core.v1.ContainerUser",
    &[f(1, "linux", Ty::Msg(&LINUX_CONTAINER_USER))],
);

pub static CSI_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.CSIVolumeSource",
    &[
        keep(1, "driver", Ty::Str),
        keep(2, "readOnly", Ty::Bool),
        keep(3, "fsType", Ty::Str),
        f(4, "volumeAttributes", Ty::MapStr),
        f(5, "nodePublishSecretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
    ],
);

pub static DAEMON_ENDPOINT: Msg = msg(
    "k8s.io.api.core.v1.DaemonEndpoint",
    &[keep(1, "Port", Ty::I32)],
);

pub static DOWNWARD_API_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.DownwardAPIProjection",
    &[rep(1, "items", Ty::Msg(&DOWNWARD_API_VOLUME_FILE))],
);

pub static DOWNWARD_API_VOLUME_FILE: Msg = msg(
    "k8s.io.api.core.v1.DownwardAPIVolumeFile",
    &[
        keep(1, "path", Ty::Str),
        f(2, "fieldRef", Ty::Msg(&OBJECT_FIELD_SELECTOR)),
        f(3, "resourceFieldRef", Ty::Msg(&RESOURCE_FIELD_SELECTOR)),
        keep(4, "mode", Ty::I32),
    ],
);

pub static DOWNWARD_API_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.DownwardAPIVolumeSource",
    &[
        rep(1, "items", Ty::Msg(&DOWNWARD_API_VOLUME_FILE)),
        keep(2, "defaultMode", Ty::I32),
    ],
);

pub static EMPTY_DIR_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.EmptyDirVolumeSource",
    &[f(1, "medium", Ty::Str), f(2, "sizeLimit", Ty::Quantity)],
);

pub static ENDPOINTS: Msg = msg(
    "k8s.io.api.core.v1.Endpoints",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "subsets", Ty::Msg(&ENDPOINT_SUBSET)),
    ],
);

pub static ENDPOINT_ADDRESS: Msg = msg(
    "k8s.io.api.core.v1.EndpointAddress",
    &[
        keep(1, "ip", Ty::Str),
        f(2, "targetRef", Ty::Msg(&OBJECT_REFERENCE)),
        f(3, "hostname", Ty::Str),
        keep(4, "nodeName", Ty::Str),
    ],
);

pub static ENDPOINT_PORT: Msg = msg(
    "k8s.io.api.core.v1.EndpointPort",
    &[
        f(1, "name", Ty::Str),
        keep(2, "port", Ty::I32),
        f(3, "protocol", Ty::Str),
        keep(4, "appProtocol", Ty::Str),
    ],
);

pub static ENDPOINT_SUBSET: Msg = msg(
    "k8s.io.api.core.v1.EndpointSubset",
    &[
        rep(1, "addresses", Ty::Msg(&ENDPOINT_ADDRESS)),
        rep(2, "notReadyAddresses", Ty::Msg(&ENDPOINT_ADDRESS)),
        rep(3, "ports", Ty::Msg(&ENDPOINT_PORT)),
    ],
);

pub static ENV_FROM_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.EnvFromSource",
    &[
        f(1, "prefix", Ty::Str),
        f(2, "configMapRef", Ty::Msg(&CONFIG_MAP_ENV_SOURCE)),
        f(3, "secretRef", Ty::Msg(&SECRET_ENV_SOURCE)),
    ],
);

pub static ENV_VAR: Msg = msg(
    "k8s.io.api.core.v1.EnvVar",
    &[
        keep(1, "name", Ty::Str),
        f(2, "value", Ty::Str),
        f(3, "valueFrom", Ty::Msg(&ENV_VAR_SOURCE)),
    ],
);

pub static ENV_VAR_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.EnvVarSource",
    &[
        f(1, "fieldRef", Ty::Msg(&OBJECT_FIELD_SELECTOR)),
        f(2, "resourceFieldRef", Ty::Msg(&RESOURCE_FIELD_SELECTOR)),
        f(3, "configMapKeyRef", Ty::Msg(&CONFIG_MAP_KEY_SELECTOR)),
        f(4, "secretKeyRef", Ty::Msg(&SECRET_KEY_SELECTOR)),
        f(5, "fileKeyRef", Ty::Msg(&FILE_KEY_SELECTOR)),
    ],
);

pub static EPHEMERAL_CONTAINER: Msg = msg(
    "k8s.io.api.core.v1.EphemeralContainer",
    &[
        f(
            1,
            "ephemeralContainerCommon",
            Ty::Inline(&EPHEMERAL_CONTAINER_COMMON),
        ),
        f(2, "targetContainerName", Ty::Str),
    ],
);

pub static EPHEMERAL_CONTAINER_COMMON: Msg = msg(
    "k8s.io.api.core.v1.EphemeralContainerCommon",
    &[
        keep(1, "name", Ty::Str),
        f(2, "image", Ty::Str),
        rep(3, "command", Ty::Str),
        rep(4, "args", Ty::Str),
        f(5, "workingDir", Ty::Str),
        rep(6, "ports", Ty::Msg(&CONTAINER_PORT)),
        rep(7, "env", Ty::Msg(&ENV_VAR)),
        f(8, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        rep(9, "volumeMounts", Ty::Msg(&VOLUME_MOUNT)),
        f(10, "livenessProbe", Ty::Msg(&PROBE)),
        f(11, "readinessProbe", Ty::Msg(&PROBE)),
        f(12, "lifecycle", Ty::Msg(&LIFECYCLE)),
        f(13, "terminationMessagePath", Ty::Str),
        f(14, "imagePullPolicy", Ty::Str),
        f(15, "securityContext", Ty::Msg(&SECURITY_CONTEXT)),
        f(16, "stdin", Ty::Bool),
        f(17, "stdinOnce", Ty::Bool),
        f(18, "tty", Ty::Bool),
        rep(19, "envFrom", Ty::Msg(&ENV_FROM_SOURCE)),
        f(20, "terminationMessagePolicy", Ty::Str),
        rep(21, "volumeDevices", Ty::Msg(&VOLUME_DEVICE)),
        f(22, "startupProbe", Ty::Msg(&PROBE)),
        rep(23, "resizePolicy", Ty::Msg(&CONTAINER_RESIZE_POLICY)),
        keep(24, "restartPolicy", Ty::Str),
        rep(25, "restartPolicyRules", Ty::Msg(&CONTAINER_RESTART_RULE)),
    ],
);

pub static EPHEMERAL_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.EphemeralVolumeSource",
    &[f(
        1,
        "volumeClaimTemplate",
        Ty::Msg(&PERSISTENT_VOLUME_CLAIM_TEMPLATE),
    )],
);

pub static EVENT: Msg = msg(
    "k8s.io.api.core.v1.Event",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "involvedObject", Ty::Msg(&OBJECT_REFERENCE)),
        f(3, "reason", Ty::Str),
        f(4, "message", Ty::Str),
        f(5, "source", Ty::Msg(&EVENT_SOURCE)),
        f(6, "firstTimestamp", Ty::Time),
        f(7, "lastTimestamp", Ty::Time),
        f(8, "count", Ty::I32),
        f(9, "type", Ty::Str),
        f(10, "eventTime", Ty::MicroTime),
        f(11, "series", Ty::Msg(&EVENT_SERIES)),
        f(12, "action", Ty::Str),
        f(13, "related", Ty::Msg(&OBJECT_REFERENCE)),
        f(14, "reportingComponent", Ty::Str),
        f(15, "reportingInstance", Ty::Str),
    ],
);

pub static EVENT_SERIES: Msg = msg(
    "k8s.io.api.core.v1.EventSeries",
    &[
        f(1, "count", Ty::I32),
        f(2, "lastObservedTime", Ty::MicroTime),
    ],
);

pub static EVENT_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.EventSource",
    &[f(1, "component", Ty::Str), f(2, "host", Ty::Str)],
);

pub static EXEC_ACTION: Msg = msg(
    "k8s.io.api.core.v1.ExecAction",
    &[rep(1, "command", Ty::Str)],
);

pub static FC_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.FCVolumeSource",
    &[
        rep(1, "targetWWNs", Ty::Str),
        keep(2, "lun", Ty::I32),
        f(3, "fsType", Ty::Str),
        f(4, "readOnly", Ty::Bool),
        rep(5, "wwids", Ty::Str),
    ],
);

pub static FILE_KEY_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.FileKeySelector",
    &[
        keep(1, "volumeName", Ty::Str),
        keep(2, "path", Ty::Str),
        keep(3, "key", Ty::Str),
        keep(4, "optional", Ty::Bool),
    ],
);

pub static FLEX_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.FlexVolumeSource",
    &[
        keep(1, "driver", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(4, "readOnly", Ty::Bool),
        f(5, "options", Ty::MapStr),
    ],
);

pub static FLOCKER_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.FlockerVolumeSource",
    &[f(1, "datasetName", Ty::Str), f(2, "datasetUUID", Ty::Str)],
);

pub static GCE_PERSISTENT_DISK_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.GCEPersistentDiskVolumeSource",
    &[
        keep(1, "pdName", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "partition", Ty::I32),
        f(4, "readOnly", Ty::Bool),
    ],
);

pub static GIT_REPO_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.GitRepoVolumeSource",
    &[
        keep(1, "repository", Ty::Str),
        f(2, "revision", Ty::Str),
        f(3, "directory", Ty::Str),
    ],
);

pub static GLUSTERFS_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.GlusterfsVolumeSource",
    &[
        keep(1, "endpoints", Ty::Str),
        keep(2, "path", Ty::Str),
        f(3, "readOnly", Ty::Bool),
    ],
);

pub static GRPC_ACTION: Msg = msg(
    "k8s.io.api.core.v1.GRPCAction",
    &[keep(1, "port", Ty::I32), keep(2, "service", Ty::Str)],
);

pub static HOST_ALIAS: Msg = msg(
    "k8s.io.api.core.v1.HostAlias",
    &[keep(1, "ip", Ty::Str), rep(2, "hostnames", Ty::Str)],
);

pub static HOST_IP: Msg = msg("k8s.io.api.core.v1.HostIP", &[keep(1, "ip", Ty::Str)]);

pub static HOST_PATH_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.HostPathVolumeSource",
    &[keep(1, "path", Ty::Str), keep(2, "type", Ty::Str)],
);

pub static HTTP_GET_ACTION: Msg = msg(
    "k8s.io.api.core.v1.HTTPGetAction",
    &[
        f(1, "path", Ty::Str),
        keep(2, "port", Ty::IntOrString),
        f(3, "host", Ty::Str),
        f(4, "scheme", Ty::Str),
        rep(5, "httpHeaders", Ty::Msg(&HTTP_HEADER)),
    ],
);

pub static HTTP_HEADER: Msg = msg(
    "k8s.io.api.core.v1.HTTPHeader",
    &[keep(1, "name", Ty::Str), keep(2, "value", Ty::Str)],
);

pub static IMAGE_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ImageVolumeSource",
    &[f(1, "reference", Ty::Str), f(2, "pullPolicy", Ty::Str)],
);

pub static ISCSI_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ISCSIVolumeSource",
    &[
        keep(1, "targetPortal", Ty::Str),
        keep(2, "iqn", Ty::Str),
        keep(3, "lun", Ty::I32),
        f(4, "iscsiInterface", Ty::Str),
        f(5, "fsType", Ty::Str),
        f(6, "readOnly", Ty::Bool),
        rep(7, "portals", Ty::Str),
        f(8, "chapAuthDiscovery", Ty::Bool),
        f(10, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(11, "chapAuthSession", Ty::Bool),
        keep(12, "initiatorName", Ty::Str),
    ],
);

pub static KEY_TO_PATH: Msg = msg(
    "k8s.io.api.core.v1.KeyToPath",
    &[
        keep(1, "key", Ty::Str),
        keep(2, "path", Ty::Str),
        keep(3, "mode", Ty::I32),
    ],
);

pub static LIFECYCLE: Msg = msg(
    "k8s.io.api.core.v1.Lifecycle",
    &[
        f(1, "postStart", Ty::Msg(&LIFECYCLE_HANDLER)),
        f(2, "preStop", Ty::Msg(&LIFECYCLE_HANDLER)),
        keep(3, "stopSignal", Ty::Str),
    ],
);

pub static LIFECYCLE_HANDLER: Msg = msg(
    "k8s.io.api.core.v1.LifecycleHandler",
    &[
        f(1, "exec", Ty::Msg(&EXEC_ACTION)),
        f(2, "httpGet", Ty::Msg(&HTTP_GET_ACTION)),
        f(3, "tcpSocket", Ty::Msg(&TCP_SOCKET_ACTION)),
        f(4, "sleep", Ty::Msg(&SLEEP_ACTION)),
    ],
);

pub static LINUX_CONTAINER_USER: Msg = msg(
    "k8s.io.api.core.v1.LinuxContainerUser",
    &[
        keep(1, "uid", Ty::I64),
        keep(2, "gid", Ty::I64),
        rep(3, "supplementalGroups", Ty::I64),
    ],
);

pub static LOAD_BALANCER_INGRESS: Msg = msg(
    "k8s.io.api.core.v1.LoadBalancerIngress",
    &[
        f(1, "ip", Ty::Str),
        f(2, "hostname", Ty::Str),
        keep(3, "ipMode", Ty::Str),
        rep(4, "ports", Ty::Msg(&PORT_STATUS)),
    ],
);

pub static LOAD_BALANCER_STATUS: Msg = msg(
    "k8s.io.api.core.v1.LoadBalancerStatus",
    &[rep(1, "ingress", Ty::Msg(&LOAD_BALANCER_INGRESS))],
);

pub static LOCAL_OBJECT_REFERENCE: Msg = msg(
    "k8s.io.api.core.v1.LocalObjectReference",
    &[keep(1, "name", Ty::Str)],
);

pub static MODIFY_VOLUME_STATUS: Msg = msg(
    "k8s.io.api.core.v1.ModifyVolumeStatus",
    &[
        f(1, "targetVolumeAttributesClassName", Ty::Str),
        keep(2, "status", Ty::Str),
    ],
);

pub static NAMESPACE: Msg = msg(
    "k8s.io.api.core.v1.Namespace",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NAMESPACE_SPEC)),
        f(3, "status", Ty::Msg(&NAMESPACE_STATUS)),
    ],
);

pub static NAMESPACE_CONDITION: Msg = msg(
    "k8s.io.api.core.v1.NamespaceCondition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
    ],
);

pub static NAMESPACE_SPEC: Msg = msg(
    "k8s.io.api.core.v1.NamespaceSpec",
    &[rep(1, "finalizers", Ty::Str)],
);

pub static NAMESPACE_STATUS: Msg = msg(
    "k8s.io.api.core.v1.NamespaceStatus",
    &[
        f(1, "phase", Ty::Str),
        rep(2, "conditions", Ty::Msg(&NAMESPACE_CONDITION)),
    ],
);

pub static NFS_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.NFSVolumeSource",
    &[
        keep(1, "server", Ty::Str),
        keep(2, "path", Ty::Str),
        f(3, "readOnly", Ty::Bool),
    ],
);

pub static NODE: Msg = msg(
    "k8s.io.api.core.v1.Node",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&NODE_SPEC)),
        f(3, "status", Ty::Msg(&NODE_STATUS)),
    ],
);

pub static NODE_ADDRESS: Msg = msg(
    "k8s.io.api.core.v1.NodeAddress",
    &[keep(1, "type", Ty::Str), keep(2, "address", Ty::Str)],
);

pub static NODE_AFFINITY: Msg = msg(
    "k8s.io.api.core.v1.NodeAffinity",
    &[
        f(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&NODE_SELECTOR),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&PREFERRED_SCHEDULING_TERM),
        ),
    ],
);

pub static NODE_CONDITION: Msg = msg(
    "k8s.io.api.core.v1.NodeCondition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(3, "lastHeartbeatTime", Ty::Time),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
    ],
);

pub static NODE_CONFIG_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.NodeConfigSource",
    &[f(2, "configMap", Ty::Msg(&CONFIG_MAP_NODE_CONFIG_SOURCE))],
);

pub static NODE_CONFIG_STATUS: Msg = msg(
    "k8s.io.api.core.v1.NodeConfigStatus",
    &[
        f(1, "assigned", Ty::Msg(&NODE_CONFIG_SOURCE)),
        f(2, "active", Ty::Msg(&NODE_CONFIG_SOURCE)),
        f(3, "lastKnownGood", Ty::Msg(&NODE_CONFIG_SOURCE)),
        f(4, "error", Ty::Str),
    ],
);

pub static NODE_DAEMON_ENDPOINTS: Msg = msg(
    "k8s.io.api.core.v1.NodeDaemonEndpoints",
    &[f(1, "kubeletEndpoint", Ty::Msg(&DAEMON_ENDPOINT))],
);

pub static NODE_FEATURES: Msg = msg(
    "k8s.io.api.core.v1.NodeFeatures",
    &[keep(1, "supplementalGroupsPolicy", Ty::Bool)],
);

pub static NODE_RUNTIME_HANDLER: Msg = msg(
    "k8s.io.api.core.v1.NodeRuntimeHandler",
    &[
        f(1, "name", Ty::Str),
        f(2, "features", Ty::Msg(&NODE_RUNTIME_HANDLER_FEATURES)),
    ],
);

pub static NODE_RUNTIME_HANDLER_FEATURES: Msg = msg(
    "k8s.io.api.core.v1.NodeRuntimeHandlerFeatures",
    &[
        keep(1, "recursiveReadOnlyMounts", Ty::Bool),
        keep(2, "userNamespaces", Ty::Bool),
    ],
);

pub static NODE_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.NodeSelector",
    &[rep(1, "nodeSelectorTerms", Ty::Msg(&NODE_SELECTOR_TERM))],
);

pub static NODE_SELECTOR_REQUIREMENT: Msg = msg(
    "k8s.io.api.core.v1.NodeSelectorRequirement",
    &[
        keep(1, "key", Ty::Str),
        keep(2, "operator", Ty::Str),
        rep(3, "values", Ty::Str),
    ],
);

pub static NODE_SELECTOR_TERM: Msg = msg(
    "k8s.io.api.core.v1.NodeSelectorTerm",
    &[
        rep(1, "matchExpressions", Ty::Msg(&NODE_SELECTOR_REQUIREMENT)),
        rep(2, "matchFields", Ty::Msg(&NODE_SELECTOR_REQUIREMENT)),
    ],
);

pub static NODE_SPEC: Msg = msg(
    "k8s.io.api.core.v1.NodeSpec",
    &[
        f(1, "podCIDR", Ty::Str),
        f(2, "externalID", Ty::Str),
        f(3, "providerID", Ty::Str),
        f(4, "unschedulable", Ty::Bool),
        rep(5, "taints", Ty::Msg(&TAINT)),
        f(6, "configSource", Ty::Msg(&NODE_CONFIG_SOURCE)),
        rep(7, "podCIDRs", Ty::Str),
    ],
);

pub static NODE_STATUS: Msg = msg(
    "k8s.io.api.core.v1.NodeStatus",
    &[
        f(1, "capacity", Ty::MapQuantity),
        f(2, "allocatable", Ty::MapQuantity),
        f(3, "phase", Ty::Str),
        rep(4, "conditions", Ty::Msg(&NODE_CONDITION)),
        rep(5, "addresses", Ty::Msg(&NODE_ADDRESS)),
        f(6, "daemonEndpoints", Ty::Msg(&NODE_DAEMON_ENDPOINTS)),
        f(7, "nodeInfo", Ty::Msg(&NODE_SYSTEM_INFO)),
        rep(8, "images", Ty::Msg(&CONTAINER_IMAGE)),
        rep(9, "volumesInUse", Ty::Str),
        rep(10, "volumesAttached", Ty::Msg(&ATTACHED_VOLUME)),
        f(11, "config", Ty::Msg(&NODE_CONFIG_STATUS)),
        rep(12, "runtimeHandlers", Ty::Msg(&NODE_RUNTIME_HANDLER)),
        f(13, "features", Ty::Msg(&NODE_FEATURES)),
        rep(14, "declaredFeatures", Ty::Str),
    ],
);

pub static NODE_SWAP_STATUS: Msg = msg(
    "k8s.io.api.core.v1.NodeSwapStatus",
    &[keep(1, "capacity", Ty::I64)],
);

pub static NODE_SYSTEM_INFO: Msg = msg(
    "k8s.io.api.core.v1.NodeSystemInfo",
    &[
        keep(1, "machineID", Ty::Str),
        keep(2, "systemUUID", Ty::Str),
        keep(3, "bootID", Ty::Str),
        keep(4, "kernelVersion", Ty::Str),
        keep(5, "osImage", Ty::Str),
        keep(6, "containerRuntimeVersion", Ty::Str),
        keep(7, "kubeletVersion", Ty::Str),
        keep(8, "kubeProxyVersion", Ty::Str),
        keep(9, "operatingSystem", Ty::Str),
        keep(10, "architecture", Ty::Str),
        f(11, "swap", Ty::Msg(&NODE_SWAP_STATUS)),
    ],
);

pub static OBJECT_FIELD_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.ObjectFieldSelector",
    &[f(1, "apiVersion", Ty::Str), keep(2, "fieldPath", Ty::Str)],
);

pub static OBJECT_REFERENCE: Msg = msg(
    "k8s.io.api.core.v1.ObjectReference",
    &[
        f(1, "kind", Ty::Str),
        f(2, "namespace", Ty::Str),
        f(3, "name", Ty::Str),
        f(4, "uid", Ty::Str),
        f(5, "apiVersion", Ty::Str),
        f(6, "resourceVersion", Ty::Str),
        f(7, "fieldPath", Ty::Str),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaim",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&PERSISTENT_VOLUME_CLAIM_SPEC)),
        f(3, "status", Ty::Msg(&PERSISTENT_VOLUME_CLAIM_STATUS)),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM_CONDITION: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaimCondition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(3, "lastProbeTime", Ty::Time),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM_SPEC: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaimSpec",
    &[
        rep(1, "accessModes", Ty::Str),
        f(2, "resources", Ty::Msg(&VOLUME_RESOURCE_REQUIREMENTS)),
        f(3, "volumeName", Ty::Str),
        f(4, "selector", Ty::Msg(&LABEL_SELECTOR)),
        keep(5, "storageClassName", Ty::Str),
        keep(6, "volumeMode", Ty::Str),
        f(7, "dataSource", Ty::Msg(&TYPED_LOCAL_OBJECT_REFERENCE)),
        f(8, "dataSourceRef", Ty::Msg(&TYPED_OBJECT_REFERENCE)),
        keep(9, "volumeAttributesClassName", Ty::Str),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM_STATUS: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaimStatus",
    &[
        f(1, "phase", Ty::Str),
        rep(2, "accessModes", Ty::Str),
        f(3, "capacity", Ty::MapQuantity),
        rep(4, "conditions", Ty::Msg(&PERSISTENT_VOLUME_CLAIM_CONDITION)),
        f(5, "allocatedResources", Ty::MapQuantity),
        f(7, "allocatedResourceStatuses", Ty::MapStr),
        keep(8, "currentVolumeAttributesClassName", Ty::Str),
        f(9, "modifyVolumeStatus", Ty::Msg(&MODIFY_VOLUME_STATUS)),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM_TEMPLATE: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaimTemplate",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&PERSISTENT_VOLUME_CLAIM_SPEC)),
    ],
);

pub static PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.PersistentVolumeClaimVolumeSource",
    &[keep(1, "claimName", Ty::Str), f(2, "readOnly", Ty::Bool)],
);

pub static PHOTON_PERSISTENT_DISK_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.PhotonPersistentDiskVolumeSource",
    &[keep(1, "pdID", Ty::Str), f(2, "fsType", Ty::Str)],
);

pub static POD: Msg = msg(
    "k8s.io.api.core.v1.Pod",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
        f(3, "status", Ty::Msg(&POD_STATUS)),
    ],
);

pub static POD_AFFINITY: Msg = msg(
    "k8s.io.api.core.v1.PodAffinity",
    &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
);

pub static POD_AFFINITY_TERM: Msg = msg(
    "k8s.io.api.core.v1.PodAffinityTerm",
    &[
        f(1, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        rep(2, "namespaces", Ty::Str),
        keep(3, "topologyKey", Ty::Str),
        f(4, "namespaceSelector", Ty::Msg(&LABEL_SELECTOR)),
        rep(5, "matchLabelKeys", Ty::Str),
        rep(6, "mismatchLabelKeys", Ty::Str),
    ],
);

pub static POD_ANTI_AFFINITY: Msg = msg(
    "k8s.io.api.core.v1.PodAntiAffinity",
    &[
        rep(
            1,
            "requiredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&POD_AFFINITY_TERM),
        ),
        rep(
            2,
            "preferredDuringSchedulingIgnoredDuringExecution",
            Ty::Msg(&WEIGHTED_POD_AFFINITY_TERM),
        ),
    ],
);

pub static POD_CERTIFICATE_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.PodCertificateProjection",
    &[
        keep(1, "signerName", Ty::Str),
        keep(2, "keyType", Ty::Str),
        keep(3, "maxExpirationSeconds", Ty::I32),
        f(4, "credentialBundlePath", Ty::Str),
        f(5, "keyPath", Ty::Str),
        f(6, "certificateChainPath", Ty::Str),
        f(7, "userAnnotations", Ty::MapStr),
    ],
);

pub static POD_CONDITION: Msg = msg(
    "k8s.io.api.core.v1.PodCondition",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "status", Ty::Str),
        f(3, "lastProbeTime", Ty::Time),
        f(4, "lastTransitionTime", Ty::Time),
        f(5, "reason", Ty::Str),
        f(6, "message", Ty::Str),
        f(7, "observedGeneration", Ty::I64),
    ],
);

pub static POD_DNS_CONFIG: Msg = msg(
    "k8s.io.api.core.v1.PodDNSConfig",
    &[
        rep(1, "nameservers", Ty::Str),
        rep(2, "searches", Ty::Str),
        rep(3, "options", Ty::Msg(&POD_DNS_CONFIG_OPTION)),
    ],
);

pub static POD_DNS_CONFIG_OPTION: Msg = msg(
    "k8s.io.api.core.v1.PodDNSConfigOption",
    &[f(1, "name", Ty::Str), keep(2, "value", Ty::Str)],
);

pub static POD_EXTENDED_RESOURCE_CLAIM_STATUS: Msg = msg(
    "k8s.io.api.core.v1.PodExtendedResourceClaimStatus",
    &[
        rep(
            1,
            "requestMappings",
            Ty::Msg(&CONTAINER_EXTENDED_RESOURCE_REQUEST),
        ),
        keep(2, "resourceClaimName", Ty::Str),
    ],
);

pub static POD_IP: Msg = msg("k8s.io.api.core.v1.PodIP", &[keep(1, "ip", Ty::Str)]);

pub static POD_OS: Msg = msg("k8s.io.api.core.v1.PodOS", &[keep(1, "name", Ty::Str)]);

pub static POD_READINESS_GATE: Msg = msg(
    "k8s.io.api.core.v1.PodReadinessGate",
    &[keep(1, "conditionType", Ty::Str)],
);

pub static POD_RESOURCE_CLAIM: Msg = msg(
    "k8s.io.api.core.v1.PodResourceClaim",
    &[
        keep(1, "name", Ty::Str),
        keep(3, "resourceClaimName", Ty::Str),
        keep(4, "resourceClaimTemplateName", Ty::Str),
    ],
);

pub static POD_RESOURCE_CLAIM_STATUS: Msg = msg(
    "k8s.io.api.core.v1.PodResourceClaimStatus",
    &[
        keep(1, "name", Ty::Str),
        keep(2, "resourceClaimName", Ty::Str),
    ],
);

pub static POD_SCHEDULING_GATE: Msg = msg(
    "k8s.io.api.core.v1.PodSchedulingGate",
    &[keep(1, "name", Ty::Str)],
);

pub static POD_SECURITY_CONTEXT: Msg = msg(
    "k8s.io.api.core.v1.PodSecurityContext",
    &[
        f(1, "seLinuxOptions", Ty::Msg(&SE_LINUX_OPTIONS)),
        keep(2, "runAsUser", Ty::I64),
        keep(3, "runAsNonRoot", Ty::Bool),
        rep(4, "supplementalGroups", Ty::I64),
        keep(5, "fsGroup", Ty::I64),
        keep(6, "runAsGroup", Ty::I64),
        rep(7, "sysctls", Ty::Msg(&SYSCTL)),
        f(
            8,
            "windowsOptions",
            Ty::Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS),
        ),
        keep(9, "fsGroupChangePolicy", Ty::Str),
        f(10, "seccompProfile", Ty::Msg(&SECCOMP_PROFILE)),
        f(11, "appArmorProfile", Ty::Msg(&APP_ARMOR_PROFILE)),
        keep(12, "supplementalGroupsPolicy", Ty::Str),
        keep(13, "seLinuxChangePolicy", Ty::Str),
    ],
);

pub static POD_SPEC: Msg = msg(
    "k8s.io.api.core.v1.PodSpec",
    &[
        rep(1, "volumes", Ty::Msg(&VOLUME)),
        rep(2, "containers", Ty::Msg(&CONTAINER)),
        f(3, "restartPolicy", Ty::Str),
        keep(4, "terminationGracePeriodSeconds", Ty::I64),
        keep(5, "activeDeadlineSeconds", Ty::I64),
        f(6, "dnsPolicy", Ty::Str),
        f(7, "nodeSelector", Ty::MapStr),
        f(8, "serviceAccountName", Ty::Str),
        f(9, "serviceAccount", Ty::Str),
        f(10, "nodeName", Ty::Str),
        f(11, "hostNetwork", Ty::Bool),
        f(12, "hostPID", Ty::Bool),
        f(13, "hostIPC", Ty::Bool),
        f(14, "securityContext", Ty::Msg(&POD_SECURITY_CONTEXT)),
        rep(15, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(16, "hostname", Ty::Str),
        f(17, "subdomain", Ty::Str),
        f(18, "affinity", Ty::Msg(&AFFINITY)),
        f(19, "schedulerName", Ty::Str),
        rep(20, "initContainers", Ty::Msg(&CONTAINER)),
        keep(21, "automountServiceAccountToken", Ty::Bool),
        rep(22, "tolerations", Ty::Msg(&TOLERATION)),
        rep(23, "hostAliases", Ty::Msg(&HOST_ALIAS)),
        f(24, "priorityClassName", Ty::Str),
        keep(25, "priority", Ty::I32),
        f(26, "dnsConfig", Ty::Msg(&POD_DNS_CONFIG)),
        keep(27, "shareProcessNamespace", Ty::Bool),
        rep(28, "readinessGates", Ty::Msg(&POD_READINESS_GATE)),
        keep(29, "runtimeClassName", Ty::Str),
        keep(30, "enableServiceLinks", Ty::Bool),
        keep(31, "preemptionPolicy", Ty::Str),
        f(32, "overhead", Ty::MapQuantity),
        rep(
            33,
            "topologySpreadConstraints",
            Ty::Msg(&TOPOLOGY_SPREAD_CONSTRAINT),
        ),
        rep(34, "ephemeralContainers", Ty::Msg(&EPHEMERAL_CONTAINER)),
        keep(35, "setHostnameAsFQDN", Ty::Bool),
        f(36, "os", Ty::Msg(&POD_OS)),
        keep(37, "hostUsers", Ty::Bool),
        rep(38, "schedulingGates", Ty::Msg(&POD_SCHEDULING_GATE)),
        rep(39, "resourceClaims", Ty::Msg(&POD_RESOURCE_CLAIM)),
        f(40, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
        keep(41, "hostnameOverride", Ty::Str),
        f(42, "workloadRef", Ty::Msg(&WORKLOAD_REFERENCE)),
    ],
);

pub static POD_STATUS: Msg = msg(
    "k8s.io.api.core.v1.PodStatus",
    &[
        f(1, "phase", Ty::Str),
        rep(2, "conditions", Ty::Msg(&POD_CONDITION)),
        f(3, "message", Ty::Str),
        f(4, "reason", Ty::Str),
        f(5, "hostIP", Ty::Str),
        f(6, "podIP", Ty::Str),
        f(7, "startTime", Ty::Time),
        rep(8, "containerStatuses", Ty::Msg(&CONTAINER_STATUS)),
        f(9, "qosClass", Ty::Str),
        rep(10, "initContainerStatuses", Ty::Msg(&CONTAINER_STATUS)),
        f(11, "nominatedNodeName", Ty::Str),
        rep(12, "podIPs", Ty::Msg(&POD_IP)),
        rep(13, "ephemeralContainerStatuses", Ty::Msg(&CONTAINER_STATUS)),
        f(14, "resize", Ty::Str),
        rep(
            15,
            "resourceClaimStatuses",
            Ty::Msg(&POD_RESOURCE_CLAIM_STATUS),
        ),
        rep(16, "hostIPs", Ty::Msg(&HOST_IP)),
        f(17, "observedGeneration", Ty::I64),
        f(
            18,
            "extendedResourceClaimStatus",
            Ty::Msg(&POD_EXTENDED_RESOURCE_CLAIM_STATUS),
        ),
        f(19, "allocatedResources", Ty::MapQuantity),
        f(20, "resources", Ty::Msg(&RESOURCE_REQUIREMENTS)),
    ],
);

pub static POD_TEMPLATE_SPEC: Msg = msg(
    "k8s.io.api.core.v1.PodTemplateSpec",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&POD_SPEC)),
    ],
);

pub static PORTWORX_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.PortworxVolumeSource",
    &[
        keep(1, "volumeID", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "readOnly", Ty::Bool),
    ],
);

pub static PORT_STATUS: Msg = msg(
    "k8s.io.api.core.v1.PortStatus",
    &[
        keep(1, "port", Ty::I32),
        keep(2, "protocol", Ty::Str),
        keep(3, "error", Ty::Str),
    ],
);

pub static PREFERRED_SCHEDULING_TERM: Msg = msg(
    "k8s.io.api.core.v1.PreferredSchedulingTerm",
    &[
        keep(1, "weight", Ty::I32),
        f(2, "preference", Ty::Msg(&NODE_SELECTOR_TERM)),
    ],
);

pub static PROBE: Msg = msg(
    "k8s.io.api.core.v1.Probe",
    &[
        f(1, "handler", Ty::Inline(&PROBE_HANDLER)),
        f(2, "initialDelaySeconds", Ty::I32),
        f(3, "timeoutSeconds", Ty::I32),
        f(4, "periodSeconds", Ty::I32),
        f(5, "successThreshold", Ty::I32),
        f(6, "failureThreshold", Ty::I32),
        keep(7, "terminationGracePeriodSeconds", Ty::I64),
    ],
);

pub static PROBE_HANDLER: Msg = msg(
    "k8s.io.api.core.v1.ProbeHandler",
    &[
        f(1, "exec", Ty::Msg(&EXEC_ACTION)),
        f(2, "httpGet", Ty::Msg(&HTTP_GET_ACTION)),
        f(3, "tcpSocket", Ty::Msg(&TCP_SOCKET_ACTION)),
        f(4, "grpc", Ty::Msg(&GRPC_ACTION)),
    ],
);

pub static PROJECTED_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ProjectedVolumeSource",
    &[
        rep(1, "sources", Ty::Msg(&VOLUME_PROJECTION)),
        keep(2, "defaultMode", Ty::I32),
    ],
);

pub static QUOBYTE_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.QuobyteVolumeSource",
    &[
        keep(1, "registry", Ty::Str),
        keep(2, "volume", Ty::Str),
        f(3, "readOnly", Ty::Bool),
        f(4, "user", Ty::Str),
        f(5, "group", Ty::Str),
        f(6, "tenant", Ty::Str),
    ],
);

pub static RBD_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.RBDVolumeSource",
    &[
        rep(1, "monitors", Ty::Str),
        keep(2, "image", Ty::Str),
        f(3, "fsType", Ty::Str),
        f(4, "pool", Ty::Str),
        f(5, "user", Ty::Str),
        f(6, "keyring", Ty::Str),
        f(7, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(8, "readOnly", Ty::Bool),
    ],
);

pub static RESOURCE_CLAIM: Msg = msg(
    "k8s.io.api.core.v1.ResourceClaim",
    &[keep(1, "name", Ty::Str), f(2, "request", Ty::Str)],
);

pub static RESOURCE_FIELD_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.ResourceFieldSelector",
    &[
        f(1, "containerName", Ty::Str),
        keep(2, "resource", Ty::Str),
        f(3, "divisor", Ty::Quantity),
    ],
);

pub static RESOURCE_HEALTH: Msg = msg(
    "k8s.io.api.core.v1.ResourceHealth",
    &[keep(1, "resourceID", Ty::Str), f(2, "health", Ty::Str)],
);

pub static RESOURCE_REQUIREMENTS: Msg = msg(
    "k8s.io.api.core.v1.ResourceRequirements",
    &[
        f(1, "limits", Ty::MapQuantity),
        f(2, "requests", Ty::MapQuantity),
        rep(3, "claims", Ty::Msg(&RESOURCE_CLAIM)),
    ],
);

pub static RESOURCE_STATUS: Msg = msg(
    "k8s.io.api.core.v1.ResourceStatus",
    &[
        keep(1, "name", Ty::Str),
        rep(2, "resources", Ty::Msg(&RESOURCE_HEALTH)),
    ],
);

pub static SCALE_IO_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.ScaleIOVolumeSource",
    &[
        keep(1, "gateway", Ty::Str),
        keep(2, "system", Ty::Str),
        f(3, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        f(4, "sslEnabled", Ty::Bool),
        f(5, "protectionDomain", Ty::Str),
        f(6, "storagePool", Ty::Str),
        f(7, "storageMode", Ty::Str),
        f(8, "volumeName", Ty::Str),
        f(9, "fsType", Ty::Str),
        f(10, "readOnly", Ty::Bool),
    ],
);

pub static SECCOMP_PROFILE: Msg = msg(
    "k8s.io.api.core.v1.SeccompProfile",
    &[
        keep(1, "type", Ty::Str),
        keep(2, "localhostProfile", Ty::Str),
    ],
);

pub static SECRET: Msg = msg(
    "k8s.io.api.core.v1.Secret",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "data", Ty::MapBytes),
        f(3, "type", Ty::Str),
        f(4, "stringData", Ty::MapStr),
        keep(5, "immutable", Ty::Bool),
    ],
);

pub static SECRET_ENV_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.SecretEnvSource",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "optional", Ty::Bool),
    ],
);

pub static SECRET_KEY_SELECTOR: Msg = msg(
    "k8s.io.api.core.v1.SecretKeySelector",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        keep(2, "key", Ty::Str),
        keep(3, "optional", Ty::Bool),
    ],
);

pub static SECRET_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.SecretProjection",
    &[
        f(
            1,
            "localObjectReference",
            Ty::Inline(&LOCAL_OBJECT_REFERENCE),
        ),
        rep(2, "items", Ty::Msg(&KEY_TO_PATH)),
        keep(4, "optional", Ty::Bool),
    ],
);

pub static SECRET_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.SecretVolumeSource",
    &[
        f(1, "secretName", Ty::Str),
        rep(2, "items", Ty::Msg(&KEY_TO_PATH)),
        keep(3, "defaultMode", Ty::I32),
        keep(4, "optional", Ty::Bool),
    ],
);

pub static SECURITY_CONTEXT: Msg = msg(
    "k8s.io.api.core.v1.SecurityContext",
    &[
        f(1, "capabilities", Ty::Msg(&CAPABILITIES)),
        keep(2, "privileged", Ty::Bool),
        f(3, "seLinuxOptions", Ty::Msg(&SE_LINUX_OPTIONS)),
        keep(4, "runAsUser", Ty::I64),
        keep(5, "runAsNonRoot", Ty::Bool),
        keep(6, "readOnlyRootFilesystem", Ty::Bool),
        keep(7, "allowPrivilegeEscalation", Ty::Bool),
        keep(8, "runAsGroup", Ty::I64),
        keep(9, "procMount", Ty::Str),
        f(
            10,
            "windowsOptions",
            Ty::Msg(&WINDOWS_SECURITY_CONTEXT_OPTIONS),
        ),
        f(11, "seccompProfile", Ty::Msg(&SECCOMP_PROFILE)),
        f(12, "appArmorProfile", Ty::Msg(&APP_ARMOR_PROFILE)),
    ],
);

pub static SERVICE: Msg = msg(
    "k8s.io.api.core.v1.Service",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        f(2, "spec", Ty::Msg(&SERVICE_SPEC)),
        f(3, "status", Ty::Msg(&SERVICE_STATUS)),
    ],
);

pub static SERVICE_ACCOUNT: Msg = msg(
    "k8s.io.api.core.v1.ServiceAccount",
    &[
        f(1, "metadata", Ty::Msg(&OBJECT_META)),
        rep(2, "secrets", Ty::Msg(&OBJECT_REFERENCE)),
        rep(3, "imagePullSecrets", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
        keep(4, "automountServiceAccountToken", Ty::Bool),
    ],
);

pub static SERVICE_ACCOUNT_TOKEN_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.ServiceAccountTokenProjection",
    &[
        f(1, "audience", Ty::Str),
        keep(2, "expirationSeconds", Ty::I64),
        keep(3, "path", Ty::Str),
    ],
);

pub static SERVICE_PORT: Msg = msg(
    "k8s.io.api.core.v1.ServicePort",
    &[
        f(1, "name", Ty::Str),
        f(2, "protocol", Ty::Str),
        keep(3, "port", Ty::I32),
        f(4, "targetPort", Ty::IntOrString),
        f(5, "nodePort", Ty::I32),
        keep(6, "appProtocol", Ty::Str),
    ],
);

pub static SERVICE_SPEC: Msg = msg(
    "k8s.io.api.core.v1.ServiceSpec",
    &[
        rep(1, "ports", Ty::Msg(&SERVICE_PORT)),
        f(2, "selector", Ty::MapStr),
        f(3, "clusterIP", Ty::Str),
        f(4, "type", Ty::Str),
        rep(5, "externalIPs", Ty::Str),
        f(7, "sessionAffinity", Ty::Str),
        f(8, "loadBalancerIP", Ty::Str),
        rep(9, "loadBalancerSourceRanges", Ty::Str),
        f(10, "externalName", Ty::Str),
        f(11, "externalTrafficPolicy", Ty::Str),
        f(12, "healthCheckNodePort", Ty::I32),
        f(13, "publishNotReadyAddresses", Ty::Bool),
        f(
            14,
            "sessionAffinityConfig",
            Ty::Msg(&SESSION_AFFINITY_CONFIG),
        ),
        keep(17, "ipFamilyPolicy", Ty::Str),
        rep(18, "clusterIPs", Ty::Str),
        rep(19, "ipFamilies", Ty::Str),
        keep(20, "allocateLoadBalancerNodePorts", Ty::Bool),
        keep(21, "loadBalancerClass", Ty::Str),
        keep(22, "internalTrafficPolicy", Ty::Str),
        keep(23, "trafficDistribution", Ty::Str),
    ],
);

pub static SERVICE_STATUS: Msg = msg(
    "k8s.io.api.core.v1.ServiceStatus",
    &[
        f(1, "loadBalancer", Ty::Msg(&LOAD_BALANCER_STATUS)),
        rep(2, "conditions", Ty::Msg(&CONDITION)),
    ],
);

pub static SESSION_AFFINITY_CONFIG: Msg = msg(
    "k8s.io.api.core.v1.SessionAffinityConfig",
    &[f(1, "clientIP", Ty::Msg(&CLIENT_IP_CONFIG))],
);

pub static SE_LINUX_OPTIONS: Msg = msg(
    "k8s.io.api.core.v1.SELinuxOptions",
    &[
        f(1, "user", Ty::Str),
        f(2, "role", Ty::Str),
        f(3, "type", Ty::Str),
        f(4, "level", Ty::Str),
    ],
);

pub static SLEEP_ACTION: Msg = msg(
    "k8s.io.api.core.v1.SleepAction",
    &[keep(1, "seconds", Ty::I64)],
);

pub static STORAGE_OS_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.StorageOSVolumeSource",
    &[
        f(1, "volumeName", Ty::Str),
        f(2, "volumeNamespace", Ty::Str),
        f(3, "fsType", Ty::Str),
        f(4, "readOnly", Ty::Bool),
        f(5, "secretRef", Ty::Msg(&LOCAL_OBJECT_REFERENCE)),
    ],
);

pub static SYSCTL: Msg = msg(
    "k8s.io.api.core.v1.Sysctl",
    &[keep(1, "name", Ty::Str), keep(2, "value", Ty::Str)],
);

pub static TAINT: Msg = msg(
    "k8s.io.api.core.v1.Taint",
    &[
        keep(1, "key", Ty::Str),
        f(2, "value", Ty::Str),
        keep(3, "effect", Ty::Str),
        f(4, "timeAdded", Ty::Time),
    ],
);

pub static TCP_SOCKET_ACTION: Msg = msg(
    "k8s.io.api.core.v1.TCPSocketAction",
    &[keep(1, "port", Ty::IntOrString), f(2, "host", Ty::Str)],
);

pub static TOLERATION: Msg = msg(
    "k8s.io.api.core.v1.Toleration",
    &[
        f(1, "key", Ty::Str),
        f(2, "operator", Ty::Str),
        f(3, "value", Ty::Str),
        f(4, "effect", Ty::Str),
        keep(5, "tolerationSeconds", Ty::I64),
    ],
);

pub static TOPOLOGY_SPREAD_CONSTRAINT: Msg = msg(
    "k8s.io.api.core.v1.TopologySpreadConstraint",
    &[
        keep(1, "maxSkew", Ty::I32),
        keep(2, "topologyKey", Ty::Str),
        keep(3, "whenUnsatisfiable", Ty::Str),
        f(4, "labelSelector", Ty::Msg(&LABEL_SELECTOR)),
        keep(5, "minDomains", Ty::I32),
        keep(6, "nodeAffinityPolicy", Ty::Str),
        keep(7, "nodeTaintsPolicy", Ty::Str),
        rep(8, "matchLabelKeys", Ty::Str),
    ],
);

pub static TYPED_LOCAL_OBJECT_REFERENCE: Msg = msg(
    "k8s.io.api.core.v1.TypedLocalObjectReference",
    &[
        keep(1, "apiGroup", Ty::Str),
        keep(2, "kind", Ty::Str),
        keep(3, "name", Ty::Str),
    ],
);

pub static TYPED_OBJECT_REFERENCE: Msg = msg(
    "k8s.io.api.core.v1.TypedObjectReference",
    &[
        keep(1, "apiGroup", Ty::Str),
        keep(2, "kind", Ty::Str),
        keep(3, "name", Ty::Str),
        keep(4, "namespace", Ty::Str),
    ],
);

pub static VOLUME: Msg = msg(
    "k8s.io.api.core.v1.Volume",
    &[
        keep(1, "name", Ty::Str),
        f(2, "volumeSource", Ty::Inline(&VOLUME_SOURCE)),
    ],
);

pub static VOLUME_DEVICE: Msg = msg(
    "k8s.io.api.core.v1.VolumeDevice",
    &[keep(1, "name", Ty::Str), keep(2, "devicePath", Ty::Str)],
);

pub static VOLUME_MOUNT: Msg = msg(
    "k8s.io.api.core.v1.VolumeMount",
    &[
        keep(1, "name", Ty::Str),
        f(2, "readOnly", Ty::Bool),
        keep(3, "mountPath", Ty::Str),
        f(4, "subPath", Ty::Str),
        keep(5, "mountPropagation", Ty::Str),
        f(6, "subPathExpr", Ty::Str),
        keep(7, "recursiveReadOnly", Ty::Str),
    ],
);

pub static VOLUME_MOUNT_STATUS: Msg = msg(
    "k8s.io.api.core.v1.VolumeMountStatus",
    &[
        keep(1, "name", Ty::Str),
        keep(2, "mountPath", Ty::Str),
        f(3, "readOnly", Ty::Bool),
        keep(4, "recursiveReadOnly", Ty::Str),
    ],
);

pub static VOLUME_PROJECTION: Msg = msg(
    "k8s.io.api.core.v1.VolumeProjection",
    &[
        f(1, "secret", Ty::Msg(&SECRET_PROJECTION)),
        f(2, "downwardAPI", Ty::Msg(&DOWNWARD_API_PROJECTION)),
        f(3, "configMap", Ty::Msg(&CONFIG_MAP_PROJECTION)),
        f(
            4,
            "serviceAccountToken",
            Ty::Msg(&SERVICE_ACCOUNT_TOKEN_PROJECTION),
        ),
        f(
            5,
            "clusterTrustBundle",
            Ty::Msg(&CLUSTER_TRUST_BUNDLE_PROJECTION),
        ),
        f(6, "podCertificate", Ty::Msg(&POD_CERTIFICATE_PROJECTION)),
    ],
);

pub static VOLUME_RESOURCE_REQUIREMENTS: Msg = msg(
    "k8s.io.api.core.v1.VolumeResourceRequirements",
    &[
        f(1, "limits", Ty::MapQuantity),
        f(2, "requests", Ty::MapQuantity),
    ],
);

pub static VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.VolumeSource",
    &[
        f(1, "hostPath", Ty::Msg(&HOST_PATH_VOLUME_SOURCE)),
        f(2, "emptyDir", Ty::Msg(&EMPTY_DIR_VOLUME_SOURCE)),
        f(
            3,
            "gcePersistentDisk",
            Ty::Msg(&GCE_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        f(
            4,
            "awsElasticBlockStore",
            Ty::Msg(&AWS_ELASTIC_BLOCK_STORE_VOLUME_SOURCE),
        ),
        f(5, "gitRepo", Ty::Msg(&GIT_REPO_VOLUME_SOURCE)),
        f(6, "secret", Ty::Msg(&SECRET_VOLUME_SOURCE)),
        f(7, "nfs", Ty::Msg(&NFS_VOLUME_SOURCE)),
        f(8, "iscsi", Ty::Msg(&ISCSI_VOLUME_SOURCE)),
        f(9, "glusterfs", Ty::Msg(&GLUSTERFS_VOLUME_SOURCE)),
        f(
            10,
            "persistentVolumeClaim",
            Ty::Msg(&PERSISTENT_VOLUME_CLAIM_VOLUME_SOURCE),
        ),
        f(11, "rbd", Ty::Msg(&RBD_VOLUME_SOURCE)),
        f(12, "flexVolume", Ty::Msg(&FLEX_VOLUME_SOURCE)),
        f(13, "cinder", Ty::Msg(&CINDER_VOLUME_SOURCE)),
        f(14, "cephfs", Ty::Msg(&CEPH_FS_VOLUME_SOURCE)),
        f(15, "flocker", Ty::Msg(&FLOCKER_VOLUME_SOURCE)),
        f(16, "downwardAPI", Ty::Msg(&DOWNWARD_API_VOLUME_SOURCE)),
        f(17, "fc", Ty::Msg(&FC_VOLUME_SOURCE)),
        f(18, "azureFile", Ty::Msg(&AZURE_FILE_VOLUME_SOURCE)),
        f(19, "configMap", Ty::Msg(&CONFIG_MAP_VOLUME_SOURCE)),
        f(
            20,
            "vsphereVolume",
            Ty::Msg(&VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE),
        ),
        f(21, "quobyte", Ty::Msg(&QUOBYTE_VOLUME_SOURCE)),
        f(22, "azureDisk", Ty::Msg(&AZURE_DISK_VOLUME_SOURCE)),
        f(
            23,
            "photonPersistentDisk",
            Ty::Msg(&PHOTON_PERSISTENT_DISK_VOLUME_SOURCE),
        ),
        f(24, "portworxVolume", Ty::Msg(&PORTWORX_VOLUME_SOURCE)),
        f(25, "scaleIO", Ty::Msg(&SCALE_IO_VOLUME_SOURCE)),
        f(26, "projected", Ty::Msg(&PROJECTED_VOLUME_SOURCE)),
        f(27, "storageos", Ty::Msg(&STORAGE_OS_VOLUME_SOURCE)),
        f(28, "csi", Ty::Msg(&CSI_VOLUME_SOURCE)),
        f(29, "ephemeral", Ty::Msg(&EPHEMERAL_VOLUME_SOURCE)),
        f(30, "image", Ty::Msg(&IMAGE_VOLUME_SOURCE)),
    ],
);

pub static VSPHERE_VIRTUAL_DISK_VOLUME_SOURCE: Msg = msg(
    "k8s.io.api.core.v1.VsphereVirtualDiskVolumeSource",
    &[
        keep(1, "volumePath", Ty::Str),
        f(2, "fsType", Ty::Str),
        f(3, "storagePolicyName", Ty::Str),
        f(4, "storagePolicyID", Ty::Str),
    ],
);

pub static WEIGHTED_POD_AFFINITY_TERM: Msg = msg(
    "k8s.io.api.core.v1.WeightedPodAffinityTerm",
    &[
        keep(1, "weight", Ty::I32),
        f(2, "podAffinityTerm", Ty::Msg(&POD_AFFINITY_TERM)),
    ],
);

pub static WINDOWS_SECURITY_CONTEXT_OPTIONS: Msg = msg(
    "k8s.io.api.core.v1.WindowsSecurityContextOptions",
    &[
        keep(1, "gmsaCredentialSpecName", Ty::Str),
        keep(2, "gmsaCredentialSpec", Ty::Str),
        keep(3, "runAsUserName", Ty::Str),
        keep(4, "hostProcess", Ty::Bool),
    ],
);

pub static WORKLOAD_REFERENCE: Msg = msg(
    "k8s.io.api.core.v1.WorkloadReference",
    &[
        keep(1, "name", Ty::Str),
        keep(2, "podGroup", Ty::Str),
        f(3, "podGroupReplicaKey", Ty::Str),
    ],
);
