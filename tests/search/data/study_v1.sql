BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('v3.2.0.a');
CREATE TABLE studies (
	study_id INTEGER NOT NULL, 
	study_name VARCHAR(512) NOT NULL, 
	PRIMARY KEY (study_id)
);
INSERT INTO "studies" VALUES(1,'v1');
CREATE TABLE study_directions (
	study_direction_id INTEGER NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	study_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	PRIMARY KEY (study_direction_id), 
	UNIQUE (study_id, objective), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "study_directions" VALUES(1,'MINIMIZE',1,0);
CREATE TABLE study_system_attributes (
	study_system_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_system_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
CREATE TABLE study_user_attributes (
	study_user_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_user_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "study_user_attributes" VALUES(1,1,'space_fingerprint','"2e6d451c13d947b7"');
INSERT INTO "study_user_attributes" VALUES(2,1,'objective','"class_fid"');
INSERT INTO "study_user_attributes" VALUES(3,1,'base','{"data": {"name": "digits", "image_size": 16, "root": null, "channels": 3, "hflip": false, "download": true}, "model": {"generator": "dcgan", "z_dim": 128, "dense_channels": 8, "g_width": 0.0625, "g_kernels": [4, 4], "g_slopes": [0.0, 0.0], "g_cond": "cbn_linear", "g_hidden_layer": 1, "embed_dim": 4, "g_spectral_norm": false, "d_width": 0.0625, "d_kernels": [4, 4], "d_slopes": [0.2, 0.2], "d_cond": "projection", "d_hidden_layer": 1, "d_spectral_norm": true, "g_attention": "none", "d_attention": "none", "w_dim": 256, "mapping_layers": 4, "style_mixing": 0.9}, "train": {"steps": 60, "batch_size": 16, "n_dis": 1, "g_lr": 0.0002, "d_lr": 0.0002, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9], "loss": "hinge", "real_label": 0.9, "gp_weight": 10.0, "acgan_weight": 1.0, "ema": false, "ema_decay": 0.999, "ema_warmup": true, "seed": 0, "amp": true, "channels_last": true, "log_every": 20, "eval_every": 20, "checkpoint_every": 20, "grid_per_class": 8}, "metrics": {"enabled": true, "features": "domain", "inception_weights": null, "samples": 100, "real_samples": 500, "msssim_pairs": 5, "classifier_steps": 100}}');
CREATE TABLE trial_heartbeats (
	trial_heartbeat_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	heartbeat DATETIME NOT NULL, 
	PRIMARY KEY (trial_heartbeat_id), 
	UNIQUE (trial_id), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_heartbeats" VALUES(1,1,'2026-11-25 11:38:38.000000');
INSERT INTO "trial_heartbeats" VALUES(2,2,'2026-11-25 11:38:40');
INSERT INTO "trial_heartbeats" VALUES(3,3,'2026-11-25 11:38:40');
CREATE TABLE trial_intermediate_values (
	trial_intermediate_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	step INTEGER NOT NULL, 
	intermediate_value FLOAT, 
	intermediate_value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_intermediate_value_id), 
	UNIQUE (trial_id, step), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_intermediate_values" VALUES(1,1,20,4.24215716552734363638e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(2,1,40,1.51156109619140636372e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(3,1,60,1.63270469665527343753e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(4,2,20,3.41282229614257801128e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(5,2,40,3.41282229614257801128e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(6,2,60,3.41282229614257801128e+02,'FINITE');
INSERT INTO "trial_intermediate_values" VALUES(7,3,20,1.24291469726562490906e+03,'FINITE');
CREATE TABLE trial_params (
	param_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	param_name VARCHAR(512), 
	param_value FLOAT, 
	distribution_json TEXT, 
	PRIMARY KEY (param_id), 
	UNIQUE (trial_id, param_name), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_params" VALUES(1,1,'d_cond',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["projection", "concat", "acgan"]}}');
INSERT INTO "trial_params" VALUES(2,1,'g_cond',3.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["concat", "hidden_concat", "cbn_embedding", "cbn_linear"]}}');
INSERT INTO "trial_params" VALUES(3,1,'g_kernels_0',4.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(4,1,'g_kernels_1',4.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(5,1,'z_dim',12.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 8, "high": 16}}');
INSERT INTO "trial_params" VALUES(6,1,'g_lr',0.0002,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0001, "high": 1.0, "log": true}}');
INSERT INTO "trial_params" VALUES(7,2,'d_cond',0.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["projection", "concat", "acgan"]}}');
INSERT INTO "trial_params" VALUES(8,2,'g_cond',3.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["concat", "hidden_concat", "cbn_embedding", "cbn_linear"]}}');
INSERT INTO "trial_params" VALUES(9,2,'g_kernels_0',4.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(10,2,'g_kernels_1',4.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(11,2,'z_dim',12.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 8, "high": 16}}');
INSERT INTO "trial_params" VALUES(12,2,'g_lr',1.0,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0001, "high": 1.0, "log": true}}');
INSERT INTO "trial_params" VALUES(13,3,'d_cond',1.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["projection", "concat", "acgan"]}}');
INSERT INTO "trial_params" VALUES(14,3,'g_cond',2.0,'{"name": "CategoricalDistribution", "attributes": {"choices": ["concat", "hidden_concat", "cbn_embedding", "cbn_linear"]}}');
INSERT INTO "trial_params" VALUES(15,3,'g_kernels_0',5.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(16,3,'g_kernels_1',5.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 3, "high": 5}}');
INSERT INTO "trial_params" VALUES(17,3,'z_dim',11.0,'{"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 8, "high": 16}}');
INSERT INTO "trial_params" VALUES(18,3,'g_lr',1.468588598920085031e-01,'{"name": "FloatDistribution", "attributes": {"step": null, "low": 0.0001, "high": 1.0, "log": true}}');
CREATE TABLE trial_system_attributes (
	trial_system_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_system_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_system_attributes" VALUES(1,1,'fixed_params','{"z_dim": 12, "g_kernels_0": 4, "g_kernels_1": 4, "g_cond": "cbn_linear", "d_cond": "projection", "g_lr": 0.0002}');
INSERT INTO "trial_system_attributes" VALUES(2,2,'fixed_params','{"z_dim": 12, "g_kernels_0": 4, "g_kernels_1": 4, "g_cond": "cbn_linear", "d_cond": "projection", "g_lr": 1.0}');
INSERT INTO "trial_system_attributes" VALUES(3,1,'artifacts:ea9b2214-0ccf-4eed-a31c-74d9338275f5','"{\"artifact_id\": \"ea9b2214-0ccf-4eed-a31c-74d9338275f5\", \"filename\": \"step_0000020.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(4,1,'artifacts:c2c229d6-2cb1-43c4-b169-89eaf884acc8','"{\"artifact_id\": \"c2c229d6-2cb1-43c4-b169-89eaf884acc8\", \"filename\": \"step_0000040.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(5,1,'artifacts:eb683cb5-3b45-4f3f-ba92-b09d71bdf4b7','"{\"artifact_id\": \"eb683cb5-3b45-4f3f-ba92-b09d71bdf4b7\", \"filename\": \"step_0000060.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(6,1,'artifacts:7e8616f4-aa0d-430e-9a32-2ed23d144192','"{\"artifact_id\": \"7e8616f4-aa0d-430e-9a32-2ed23d144192\", \"filename\": \"checkpoint.pt\", \"mimetype\": \"application/vnd.snesdev-page-table\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(7,2,'artifacts:ea3c7f98-0b15-40a8-b285-7597de1c1c29','"{\"artifact_id\": \"ea3c7f98-0b15-40a8-b285-7597de1c1c29\", \"filename\": \"step_0000020.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(8,2,'artifacts:8a7e4a25-d911-420f-ac45-b095f2187b95','"{\"artifact_id\": \"8a7e4a25-d911-420f-ac45-b095f2187b95\", \"filename\": \"step_0000040.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(9,2,'artifacts:12ce625f-dd6c-48c8-976b-5b8bde611fdc','"{\"artifact_id\": \"12ce625f-dd6c-48c8-976b-5b8bde611fdc\", \"filename\": \"step_0000060.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(10,2,'artifacts:37d1eb8e-6753-43b2-8d74-8aa438621b9e','"{\"artifact_id\": \"37d1eb8e-6753-43b2-8d74-8aa438621b9e\", \"filename\": \"checkpoint.pt\", \"mimetype\": \"application/vnd.snesdev-page-table\", \"encoding\": null}"');
INSERT INTO "trial_system_attributes" VALUES(11,3,'artifacts:e6489203-d9df-4833-bedd-52c7f9bdeabd','"{\"artifact_id\": \"e6489203-d9df-4833-bedd-52c7f9bdeabd\", \"filename\": \"step_0000020.png\", \"mimetype\": \"image/png\", \"encoding\": null}"');
CREATE TABLE trial_user_attributes (
	trial_user_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_user_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_user_attributes" VALUES(1,1,'config','{"data": {"name": "digits", "image_size": 16, "root": null, "channels": 3, "hflip": false, "download": true}, "model": {"generator": "dcgan", "z_dim": 12, "dense_channels": 8, "g_width": 0.0625, "g_kernels": [4, 4], "g_slopes": [0.0, 0.0], "g_cond": "cbn_linear", "g_hidden_layer": 1, "embed_dim": 4, "g_spectral_norm": false, "d_width": 0.0625, "d_kernels": [4, 4], "d_slopes": [0.2, 0.2], "d_cond": "projection", "d_hidden_layer": 1, "d_spectral_norm": true, "g_attention": "none", "d_attention": "none", "w_dim": 256, "mapping_layers": 4, "style_mixing": 0.9}, "train": {"steps": 60, "batch_size": 16, "n_dis": 1, "g_lr": 0.0002, "d_lr": 0.0002, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9], "loss": "hinge", "real_label": 0.9, "gp_weight": 10.0, "acgan_weight": 1.0, "ema": false, "ema_decay": 0.999, "ema_warmup": true, "seed": 0, "amp": true, "channels_last": true, "log_every": 20, "eval_every": 20, "checkpoint_every": 20, "grid_per_class": 8}, "metrics": {"enabled": true, "features": "domain", "inception_weights": null, "samples": 100, "real_samples": 500, "msssim_pairs": 5, "classifier_steps": 100}}');
INSERT INTO "trial_user_attributes" VALUES(2,1,'run_dir','"trials/trial_00000"');
INSERT INTO "trial_user_attributes" VALUES(3,1,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(4,1,'seed','0');
INSERT INTO "trial_user_attributes" VALUES(5,1,'steps','60');
INSERT INTO "trial_user_attributes" VALUES(6,1,'objective','"class_fid"');
INSERT INTO "trial_user_attributes" VALUES(7,1,'evals','[{"step": 20, "loss_d": 3.0951633930206297, "loss_g": -0.757390209287405, "images_per_s": 1880.9550817458635, "grad_norm_g_mean": 10.173024725914, "grad_norm_g_max": 12.84287166595459, "grad_norm_d_mean": 17.211489820480345, "grad_norm_d_max": 23.96510124206543, "fid": 400.4990539550781, "class_fid": 424.21571655273436, "cond_acc": 0.10000000149011612, "msssim": 0.6169762015342712, "eval_s": 2.119370361999927}, {"step": 40, "loss_d": 2.848686921596527, "loss_g": -0.568688852712512, "images_per_s": 137.17546804324792, "grad_norm_g_mean": 6.830700349807739, "grad_norm_g_max": 10.121432304382324, "grad_norm_d_mean": 16.690664291381836, "grad_norm_d_max": 20.671659469604492, "fid": 109.33768463134766, "class_fid": 151.15610961914064, "cond_acc": 0.07000000029802322, "msssim": 0.5455415844917297, "eval_s": 0.0260011969999141}, {"step": 60, "loss_d": 1.9004351019859314, "loss_g": 0.06259052818641067, "images_per_s": 1433.9452600629909, "grad_norm_g_mean": 5.743651700019837, "grad_norm_g_max": 7.566323757171631, "grad_norm_d_mean": 14.605698347091675, "grad_norm_d_max": 18.780975341796875, "fid": 124.57518005371094, "class_fid": 163.27046966552734, "cond_acc": 0.07999999821186066, "msssim": 0.5317721366882324, "eval_s": 0.02702707100002044}]');
INSERT INTO "trial_user_attributes" VALUES(8,1,'progress_step','60');
INSERT INTO "trial_user_attributes" VALUES(9,1,'grids','{"20": "ea9b2214-0ccf-4eed-a31c-74d9338275f5", "40": "c2c229d6-2cb1-43c4-b169-89eaf884acc8", "60": "eb683cb5-3b45-4f3f-ba92-b09d71bdf4b7"}');
INSERT INTO "trial_user_attributes" VALUES(10,1,'wall_s','3.6272996079999302');
INSERT INTO "trial_user_attributes" VALUES(11,1,'storage_s','0.053815464000308566');
INSERT INTO "trial_user_attributes" VALUES(12,1,'checkpoint_artifact','"7e8616f4-aa0d-430e-9a32-2ed23d144192"');
INSERT INTO "trial_user_attributes" VALUES(13,2,'config','{"data": {"name": "digits", "image_size": 16, "root": null, "channels": 3, "hflip": false, "download": true}, "model": {"generator": "dcgan", "z_dim": 12, "dense_channels": 8, "g_width": 0.0625, "g_kernels": [4, 4], "g_slopes": [0.0, 0.0], "g_cond": "cbn_linear", "g_hidden_layer": 1, "embed_dim": 4, "g_spectral_norm": false, "d_width": 0.0625, "d_kernels": [4, 4], "d_slopes": [0.2, 0.2], "d_cond": "projection", "d_hidden_layer": 1, "d_spectral_norm": true, "g_attention": "none", "d_attention": "none", "w_dim": 256, "mapping_layers": 4, "style_mixing": 0.9}, "train": {"steps": 60, "batch_size": 16, "n_dis": 1, "g_lr": 1.0, "d_lr": 0.0002, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9], "loss": "hinge", "real_label": 0.9, "gp_weight": 10.0, "acgan_weight": 1.0, "ema": false, "ema_decay": 0.999, "ema_warmup": true, "seed": 0, "amp": true, "channels_last": true, "log_every": 20, "eval_every": 20, "checkpoint_every": 20, "grid_per_class": 8}, "metrics": {"enabled": true, "features": "domain", "inception_weights": null, "samples": 100, "real_samples": 500, "msssim_pairs": 5, "classifier_steps": 100}}');
INSERT INTO "trial_user_attributes" VALUES(14,2,'run_dir','"trials/trial_00001"');
INSERT INTO "trial_user_attributes" VALUES(15,2,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(16,2,'seed','0');
INSERT INTO "trial_user_attributes" VALUES(17,2,'steps','60');
INSERT INTO "trial_user_attributes" VALUES(18,2,'objective','"class_fid"');
INSERT INTO "trial_user_attributes" VALUES(19,2,'evals','[{"step": 20, "loss_d": 2.1971156686544417, "loss_g": 1.1343606747686863, "images_per_s": 1957.8451706407589, "grad_norm_g_mean": 0.642144337244525, "grad_norm_g_max": 12.84287166595459, "grad_norm_d_mean": 47.91672267913818, "grad_norm_d_max": 92.5069808959961, "fid": 343.11346435546875, "class_fid": 341.2822296142578, "cond_acc": 0.10000000149011612, "msssim": 1.0, "eval_s": 0.028425984000023163}, {"step": 40, "loss_d": 0.36992111429572105, "loss_g": 4.605018997192383, "images_per_s": 1475.9496018735902, "grad_norm_g_mean": 6.248521644547367e-10, "grad_norm_g_max": 9.480412899165458e-09, "grad_norm_d_mean": 14.78524444103241, "grad_norm_d_max": 31.063167572021484, "fid": 343.11346435546875, "class_fid": 341.2822296142578, "cond_acc": 0.10000000149011612, "msssim": 1.0, "eval_s": 0.02388615699987895}, {"step": 60, "loss_d": 0.020808609575033186, "loss_g": 4.945536279678345, "images_per_s": 1513.5801580846367, "grad_norm_g_mean": 4.2169237546296756e-10, "grad_norm_g_max": 4.540614106929297e-09, "grad_norm_d_mean": 3.0059054136276244, "grad_norm_d_max": 13.316555976867676, "fid": 343.11346435546875, "class_fid": 341.2822296142578, "cond_acc": 0.10000000149011612, "msssim": 1.0, "eval_s": 0.023812223000049926}]');
INSERT INTO "trial_user_attributes" VALUES(20,2,'progress_step','60');
INSERT INTO "trial_user_attributes" VALUES(21,2,'grids','{"20": "ea3c7f98-0b15-40a8-b285-7597de1c1c29", "40": "8a7e4a25-d911-420f-ac45-b095f2187b95", "60": "12ce625f-dd6c-48c8-976b-5b8bde611fdc"}');
INSERT INTO "trial_user_attributes" VALUES(22,2,'wall_s','0.646611774999883');
INSERT INTO "trial_user_attributes" VALUES(23,2,'storage_s','0.044702765000693034');
INSERT INTO "trial_user_attributes" VALUES(24,2,'checkpoint_artifact','"37d1eb8e-6753-43b2-8d74-8aa438621b9e"');
INSERT INTO "trial_user_attributes" VALUES(25,3,'config','{"data": {"name": "digits", "image_size": 16, "root": null, "channels": 3, "hflip": false, "download": true}, "model": {"generator": "dcgan", "z_dim": 11, "dense_channels": 8, "g_width": 0.0625, "g_kernels": [5, 5], "g_slopes": [0.0, 0.0], "g_cond": "cbn_embedding", "g_hidden_layer": 1, "embed_dim": 4, "g_spectral_norm": false, "d_width": 0.0625, "d_kernels": [4, 4], "d_slopes": [0.2, 0.2], "d_cond": "concat", "d_hidden_layer": 1, "d_spectral_norm": true, "g_attention": "none", "d_attention": "none", "w_dim": 256, "mapping_layers": 4, "style_mixing": 0.9}, "train": {"steps": 60, "batch_size": 16, "n_dis": 1, "g_lr": 0.1468588598920085, "d_lr": 0.0002, "g_betas": [0.0, 0.9], "d_betas": [0.0, 0.9], "loss": "hinge", "real_label": 0.9, "gp_weight": 10.0, "acgan_weight": 1.0, "ema": false, "ema_decay": 0.999, "ema_warmup": true, "seed": 0, "amp": true, "channels_last": true, "log_every": 20, "eval_every": 20, "checkpoint_every": 20, "grid_per_class": 8}, "metrics": {"enabled": true, "features": "domain", "inception_weights": null, "samples": 100, "real_samples": 500, "msssim_pairs": 5, "classifier_steps": 100}}');
INSERT INTO "trial_user_attributes" VALUES(26,3,'run_dir','"trials/trial_00002"');
INSERT INTO "trial_user_attributes" VALUES(27,3,'device','"cpu"');
INSERT INTO "trial_user_attributes" VALUES(28,3,'seed','0');
INSERT INTO "trial_user_attributes" VALUES(29,3,'steps','60');
INSERT INTO "trial_user_attributes" VALUES(30,3,'objective','"class_fid"');
INSERT INTO "trial_user_attributes" VALUES(31,3,'evals','[{"step": 20, "loss_d": 3.952348232269287, "loss_g": -1.4421642171218991, "images_per_s": 1775.0325321855457, "grad_norm_g_mean": 1.239792001247406, "grad_norm_g_max": 11.420943260192871, "grad_norm_d_mean": 28.029412460327148, "grad_norm_d_max": 32.78044891357422, "fid": 1174.85791015625, "class_fid": 1242.914697265625, "cond_acc": 0.10000000149011612, "msssim": 0.9506255984306335, "eval_s": 0.032533509999893795}]');
INSERT INTO "trial_user_attributes" VALUES(32,3,'progress_step','20');
INSERT INTO "trial_user_attributes" VALUES(33,3,'grids','{"20": "e6489203-d9df-4833-bedd-52c7f9bdeabd"}');
INSERT INTO "trial_user_attributes" VALUES(34,3,'wall_s','0.24508661699996992');
INSERT INTO "trial_user_attributes" VALUES(35,3,'storage_s','0.01668671499987795');
CREATE TABLE trial_values (
	trial_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	value FLOAT, 
	value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_value_id), 
	UNIQUE (trial_id, objective), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO "trial_values" VALUES(1,1,0,1.51156109619140636372e+02,'FINITE');
INSERT INTO "trial_values" VALUES(2,2,0,3.41282229614257801128e+02,'FINITE');
INSERT INTO "trial_values" VALUES(3,3,0,1.24291469726562490906e+03,'FINITE');
CREATE TABLE trials (
	trial_id INTEGER NOT NULL, 
	number INTEGER, 
	study_id INTEGER, 
	state VARCHAR(8) NOT NULL, 
	datetime_start DATETIME, 
	datetime_complete DATETIME, 
	PRIMARY KEY (trial_id), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO "trials" VALUES(1,0,1,'COMPLETE','2026-11-25 11:38:36.163636','2026-11-25 11:38:39.842011');
INSERT INTO "trials" VALUES(2,1,1,'COMPLETE','2026-11-25 11:38:40.020592','2026-11-25 11:38:40.709782');
INSERT INTO "trials" VALUES(3,2,1,'PRUNED','2026-11-25 11:38:40.875621','2026-11-25 11:38:41.163881');
CREATE TABLE version_info (
	version_info_id INTEGER NOT NULL, 
	schema_version INTEGER, 
	library_version VARCHAR(256), 
	PRIMARY KEY (version_info_id), 
	CHECK (version_info_id=1)
);
INSERT INTO "version_info" VALUES(1,12,'5.0.0');
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE INDEX ix_trials_study_id ON trials (study_id);
COMMIT;
